"""Assignment 06's checks against implementations written in the test suite, and chapter 6's helpers.

Correct implementations written in different ways pass every check of their target over three grader
seeds; each buggy one fails the check aimed at its mistake for every seed. A correct function fails a
check by chance with probability at most 1e-6 (``autograde.stats``).
"""

from fractions import Fraction

import numpy as np
import pytest
import torch

from tests.checking import SEEDS, assert_passes, assert_round_trip, run, target_checks
from tests.implementations.rnn_dropout import ALL, load

TARGETS = ("locked_dropout", "VariationalRNNCell", "zoneout")
TARGET_CHECKS = target_checks(TARGETS)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a second intra-op thread only adds synchronisation, which on a busy
    machine costs more than the work itself. Restored afterwards for the other modules of this worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def by_key(target, key):
    return next(i for i in ALL if i.target == target and i.key == key)


def test_enough_implementations_per_target():
    for t in TARGETS:
        impls = [i for i in ALL if i.target == t]
        assert sum(i.correct for i in impls) >= 4 and sum(not i.correct for i in impls) >= 10, t
    assert len(TARGET_CHECKS["locked_dropout"]) == 3 and len(TARGET_CHECKS["zoneout"]) == 3


@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_gets_full_marks(impl):
    fn = load(impl)
    for seed in SEEDS:
        for name in TARGET_CHECKS[impl.target]:
            result = run(name, fn, seed)
            assert result.passed, f"seed {seed}, {name}:\n{result.feedback()}"


@pytest.mark.parametrize("impl", [i for i in ALL if not i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_buggy_implementation_loses_points(impl):
    fn = load(impl)
    for seed in SEEDS:
        for name in impl.fails:
            result = run(name, fn, seed)
            assert not result.passed, f"{impl.key} passed {name} with seed {seed}"
            assert all(p.message for p in result.properties if p.status == "fail")


@pytest.mark.parametrize(
    "target, key, words",
    [
        ("locked_dropout", "fresh_each_step", "fresh mask seems to be drawn at every time step"),
        ("locked_dropout", "batch_first_confusion", "batch-first confusion"),
        ("locked_dropout", "shared_across_batch", "shared by the whole batch"),
        ("locked_dropout", "no_scaling", "inverted scaling is missing"),
        ("locked_dropout", "drops_in_eval", "must not drop at evaluation"),
        ("locked_dropout", "swapped_keep_drop", "keep and drop look swapped"),
        ("locked_dropout", "same_every_call", "same mask comes back every call"),
        ("locked_dropout", "in_place", "modified"),
        ("locked_dropout", "nan_at_p1", "NaN"),
        ("locked_dropout", "ignores_generator", "generator"),
        ("locked_dropout", "no_dim_check", "not 3-D"),
        ("VariationalRNNCell", "fresh_each_step", "mask changes between time steps"),
        ("VariationalRNNCell", "no_recurrent_mask", "unmasked"),
        ("VariationalRNNCell", "shared_across_batch", "shared by every sequence"),
        ("VariationalRNNCell", "no_scaling", "arrive unscaled"),
        ("VariationalRNNCell", "dropout_in_eval", "eval mode"),
        ("VariationalRNNCell", "masks_cached", "same mask comes back on every forward call"),
        ("VariationalRNNCell", "no_gradients", "need gradients"),
        ("zoneout", "swapped_roles", "look swapped"),
        ("zoneout", "zeroing", "zoneout never zeroes"),
        ("zoneout", "inverted_scaling", "no inverted scaling"),
        ("zoneout", "eval_returns_new", "not the new state alone"),
        ("zoneout", "one_mask_for_batch", "shared by the whole batch"),
        ("zoneout", "in_place", "was modified"),
        ("zoneout", "no_shape_check", "same shape"),
        ("locked_dropout", "valueerror_only_in_training", "with training=False"),
        ("locked_dropout", "where_nan_grad", "back-propagates 0 * inf"),
        ("locked_dropout", "numpy_global_rng", "PyTorch's global random state"),
        ("VariationalRNNCell", "hh_with_bias", "self.hh has a bias: pass bias=False"),
        ("VariationalRNNCell", "learnable_h0", "nothing else to train"),
        ("zoneout", "shape_check_only_in_training", "(20, 31) with training=False"),
        ("zoneout", "two_dimensional_only", "any shape: a 3-D state"),
        ("zoneout", "numpy_global_rng", "PyTorch's global random state"),
    ],
)
def test_messages_name_the_mistake(target, key, words):
    impl = by_key(target, key)
    feedback = "\n".join(run(n, load(impl), 5).feedback() for n in sorted(impl.fails))
    assert words in feedback, feedback


def test_cell_problems_are_explained():
    class NotAModule:
        def __init__(self, *args):
            pass

    class WrongNames(torch.nn.Module):
        def __init__(self, i, h, p_input, p_hidden):
            super().__init__()
            self.lin = torch.nn.Linear(i, h)

    assert "not a torch.nn.Module" in run("VariationalRNNCell.structure", NotAModule, 1).feedback()
    assert "self.ih = nn.Linear" in run("VariationalRNNCell.structure", WrongNames, 1).feedback()
    assert "not defined" in run("VariationalRNNCell.structure", None, 1).feedback()


def test_records_cross_a_process_boundary_unchanged(tmp_path):
    """The cell scenario's records survive the .json/.npz round trip the grader uses, with no pickle."""
    assert_round_trip("VariationalRNNCell.structure", load(by_key("VariationalRNNCell", "loop")), tmp_path)


@pytest.mark.parametrize("q, right, wrong", [("q1", "c", "a"), ("q2", "B", "a"), ("q3", " a ", "b"), ("q4", 3200, 320),
                                            ("q4", np.int64(3200), 3199.9), ("q4", Fraction(3200), "3200 units"),
                                            ("q5", "d", "b")])
def test_practice_answers(q, right, wrong):
    assert run(f"answer_{q}.rnn_dropout", right, 1).passed
    assert not run(f"answer_{q}.rnn_dropout", wrong, 1).passed


@pytest.mark.cuda
@pytest.mark.parametrize("impl", [i for i in ALL if i.correct], ids=lambda i: f"{i.target}:{i.key}")
def test_correct_implementation_on_cuda(impl):
    assert_passes(load(impl), TARGET_CHECKS[impl.target], seeds=(7,), device="cuda")


# --- chapter 6's helpers (dropout_lib.rnn_dropout) ----------------------------------------------------
def test_many_rnns_match_one_rnn_per_model_and_the_masks_have_their_structure():
    from dropout_lib import rnn_dropout as R

    sites = [R.variant(n, 0.3) for n in ("none", "naive", "between layers", "locked", "zoneout", "weight drop")]
    cfg = R.config(sites)
    model = R.ManyRNNs(list(range(len(sites))), emb=5, hidden=7)
    x = torch.randint(0, len(R.VOCAB), (len(sites), 3, 6))
    masks = R.draw_masks(cfg, 3, 6, 5, 7, generator=torch.Generator().manual_seed(0))
    locked = sites.index(R.variant("locked", 0.3))
    naive = sites.index(R.variant("naive", 0.3))
    assert (masks["mh"][locked] == masks["mh"][locked][:, :1]).all()
    assert not (masks["mh"][naive] == masks["mh"][naive][:, :1]).all()
    assert (masks["mh"][0] == 1).all() and (masks["z"][0] == 0).all() and (masks["mw"][0] == 1).all()
    logits = model(x, cfg, masks)
    for m in range(len(sites)):  # a plain loop over one model, from the formulas in the module docstring
        e = model.emb[m][x[m]] * masks["mx"][m]
        h = torch.zeros(3, 7)
        ys = []
        for t in range(6):
            c = torch.tanh(e[:, t] @ model.w_ih[m] + model.b[m] + (h * masks["mh"][m][:, t]) @ (model.w_hh[m] * masks["mw"][m]))
            z = masks["z"][m][:, t]
            h = z * h + (1 - z) * c
            ys.append(h)
        y = torch.stack(ys, 1) * masks["my"][m]
        assert torch.allclose(logits[m], y @ model.w_out[m] + model.b_out[m], atol=1e-5)


def test_evaluation_without_zoneout_is_torch_rnn():
    from dropout_lib import rnn_dropout as R

    cfg = R.config([R.Sites()])
    model = R.ManyRNNs([4], emb=5, hidden=7)
    rnn = torch.nn.RNN(5, 7, nonlinearity="tanh", batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(model.w_ih[0].T)
        rnn.weight_hh_l0.copy_(model.w_hh[0].T)
        rnn.bias_ih_l0.copy_(model.b[0, 0])
        rnn.bias_hh_l0.zero_()
        x = torch.randint(0, len(R.VOCAB), (1, 3, 6))
        out, _ = rnn(model.emb[0][x[0]])
        assert torch.allclose(model(x, cfg)[0], out @ model.w_out[0] + model.b_out[0], atol=1e-5)


def test_corpus_is_fixed_and_held_out():
    from dropout_lib import rnn_dropout as R

    a, b = R.corpus(n_train=600), R.corpus(n_train=600)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.x, b.train.x)
    assert a.text["train"] not in a.text["test"] and set(a.text["test"]) <= set(R.VOCAB)
    assert np.array_equal(a.train.y[:, :-1].numpy(), a.train.x[:, 1:].numpy())
