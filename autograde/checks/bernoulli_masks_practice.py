"""Checks for assignment 02's five practice questions (chapter 2, "Practice questions").

Each question is multiple choice; the student sets ``answer_q1`` ... ``answer_q5`` to a letter (case and
spaces around it do not matter, as the assignment's text says: ``properties.answer_check``). Contract clause ->
check.property: the answer to question N -> bernoulli_masks.qN."answer". The
answers and their explanations are public in the chapter behind a toggle: the points reward working
through the questions, the messages point back to the reasoning.

Built on ``properties.answer_check``, with one addition: a variable the student never defined (the
released notebook's ``raise NotImplementedError()`` is still there) gets a message that says how to
answer, instead of the generic "run the cell that defines it".
"""

from __future__ import annotations

from dataclasses import replace

from . import Check
from . import properties as prop

# question -> (accepted answers, why a wrong answer is wrong). The wording of the questions is in
# book/02_bernoulli_masks.md (labels ex-bm-count, ex-bm-swapped, ex-bm-classic, ex-bm-grad,
# ex-bm-nonlinear) and in the assignment's markdown cells; tests check that all three agree.
ANSWERS: dict[str, tuple[list[str], str]] = {
    "q1": (["b"], "the number dropped is Binomial(n = 500, p = 0.2): its mean is np = 100 and its standard "
           "deviation sqrt(npq) = sqrt(80), about 8.9 (80 is the variance, 400 the number kept)"),
    "q2": (["c"], "torch.rand(shape) < p is true with probability p, so this mask KEEPS a unit with probability p: "
           "at p = 0.3 about 30% survive instead of 70%, and the grader's drop rate property says keep and drop "
           "look swapped"),
    "q3": (["a"], "training gives 0 with probability p = 0.25 and x = 2.0 with probability q = 0.75; classic "
           "dropout evaluates to q x = 1.5, and the variance is q(1 - q) x^2 = 0.75"),
    "q4": (["d"], "the loss gradient of the weights into a dropped unit is zero, so plain SGD leaves them alone, but "
           "momentum, Adam's running averages and weight decay move them without any gradient (chapter 2, "
           "'What an update does to a dropped unit')"),
    "q5": (["c"], "scaling by q matches the average training output only through linear layers; after a "
           "nonlinearity f, E[f(z)] differs from f(E[z]) in general, so the weight scaling inference rule is an "
           "approximation"),
}


def _practice_check(q: str, accepted: list[str], why: str) -> Check:
    variable = f"answer_{q}"
    base = prop.answer_check(f"bernoulli_masks.{q}", variable, accepted, f"{why} (chapter 2, Practice questions)")

    def judge(j):
        if j.record("answer").get("status") == "missing":
            j.fail(
                "answer",
                f"{variable} is not defined (no answer yet): in question {q[1:]}'s cell replace "
                f"raise NotImplementedError() with {variable} = \"a\", \"b\", \"c\" or \"d\", and run the cell",
            )
            return
        base.judge(j)

    return replace(base, judge=judge)


CHECKS = [_practice_check(q, accepted, why) for q, (accepted, why) in ANSWERS.items()]
