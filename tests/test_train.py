"""cnnlab.train: a short seeded run beats chance, repeatability, silence, metrics, checkpoints."""


import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torch import nn
from torch.utils.data import DataLoader

from cnnlab.models import convnet
from cnnlab.train import (
    History,
    accuracy,
    confusion_matrix,
    evaluate,
    fit,
    load_checkpoint,
    pick_device,
    predict,
    save_checkpoint,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(seed=0, width=8):
    torch.manual_seed(seed)
    return convnet(1, 10, n=1, m=2, k=0, width=width, input_size=8)


def test_short_seeded_run_beats_chance_clearly(digits):
    model = small_model(width=16)
    before = evaluate(model, digits.test).accuracy
    history = fit(model, digits.train, digits.val, epochs=3, lr=1e-2, progress=False)
    after = evaluate(model, digits.test)
    assert history.epochs == 3 and len(history.val_acc) == 3
    assert before < 0.3  # an untrained model is near chance (0.1) ...
    assert after.accuracy > 0.85  # ... three epochs on 1,258 digits are far above it (~0.95)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_acc[-1] == pytest.approx(evaluate(model, digits.val).accuracy)


def test_same_seed_same_history_and_weights(digits):
    runs = []
    for _ in range(2):
        model = small_model()
        h = fit(model, digits.train, digits.val, epochs=2, seed=3, device="cpu", progress=False)
        runs.append((h, model.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert h1.train_loss == h2.train_loss and h1.val_acc == h2.val_acc
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    h3 = fit(small_model(), digits.train, epochs=1, seed=4, progress=False)
    assert h3.train_loss[0] != h1.train_loss[0]  # another seed, another batch order


def test_progress_false_is_silent_and_true_uses_stderr(digits, capfd):
    x, y = digits.train.tensors
    fit(small_model(), (x[:64], y[:64]), (x[:32], y[:32]), epochs=2, progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    fit(small_model(), (x[:64], y[:64]), epochs=1, progress=True)
    out, err = capfd.readouterr()
    assert out == "" and "fit" in err


def test_fit_accepts_tuples_datasets_and_loaders(digits):
    x, y = digits.train.tensors
    loader = DataLoader(digits.train, batch_size=128, shuffle=False)
    for data in [(x, y), digits.train, loader]:
        h = fit(small_model(), data, epochs=1, progress=False)
        assert h.epochs == 1 and h.val_acc == []


def test_fit_sgd_and_given_optimizer(digits):
    model = small_model()
    h = fit(model, digits.train, epochs=2, lr=0.05, optimizer="sgd", progress=False)
    assert h.train_loss[1] < h.train_loss[0]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit(model, digits.train, epochs=1, optimizer=opt, progress=False)
    assert all("momentum_buffer" in st for st in opt.state.values())  # this optimizer was used


def test_fit_augment_and_lr_decay(digits):
    calls = []

    def augment(x):
        calls.append(x.shape)
        return x.flip(-1)

    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, digits.train, epochs=2, optimizer=opt, lr_decay=0.5, augment=augment,
        batch_size=256, progress=False)
    assert len(calls) == 2 * 5 and calls[0] == (256, 1, 8, 8)  # every training batch, 2 epochs
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr_decay": 0}, "lr_decay"),
        ({"epochs": -1}, "epochs"),
        ({"lr": 0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"device": "gpu7"}, "device"),
    ],
)
def test_fit_bad_arguments(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(small_model(), digits.train, **{"progress": False, "epochs": 1, **kwargs})


def test_fit_rejects_data_it_cannot_use():
    with pytest.raises(ValueError, match="DataLoader, a Dataset"):
        fit(small_model(), np.zeros((4, 1, 8, 8)), epochs=1, progress=False)
    with pytest.raises(ValueError, match="as many samples"):
        fit(small_model(), (torch.zeros(4, 1, 8, 8), torch.zeros(3).long()), progress=False)


def test_fit_trains_googlenet_auxiliary_heads():
    from cnnlab.models import GoogLeNet

    torch.manual_seed(0)
    model = GoogLeNet(num_classes=3, aux_logits=True)
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2])
    before = model.aux1.fc2.weight.clone()
    h = fit(model, (x, y), (x, y), epochs=1, batch_size=6, progress=False)
    assert not torch.equal(before, model.aux1.fc2.weight)  # the auxiliary loss reached the head
    assert len(h.val_acc) == 1  # evaluation in eval mode: the scores alone


@pytest.mark.parametrize("cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_pick_device_auto_takes_cuda_when_there_is_one(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert pick_device("auto") == torch.device(expected)
    assert pick_device() == torch.device(expected)


def test_pick_device_passes_an_explicit_device_through():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("cuda:1") == torch.device("cuda", 1)   # named, not opened: no GPU needed
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu7'"):
        pick_device("gpu7")


def test_evaluate_and_predict_agree_and_restore_mode(digits):
    model = small_model().train()
    ev = evaluate(model, digits.test)
    assert model.training
    pred, true = predict(model, digits.test)
    assert torch.equal(true, digits.test.tensors[1])
    assert ev.accuracy == pytest.approx(accuracy(pred, true))
    x, y = digits.test.tensors
    with torch.no_grad():
        model.eval()
        expected_loss = nn.functional.cross_entropy(model(x), y).item()
    assert ev.loss == pytest.approx(expected_loss, rel=1e-5)


def test_accuracy():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(scores, torch.tensor([1, 0, 0, 0])) == 0.75
    assert accuracy(np.array([1, 1, 0]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"\(4, 2\) and \(3,\)"):
        accuracy(scores, torch.tensor([1, 0, 0]))
    with pytest.raises(ValueError, match="empty"):
        accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_confusion_matrix_matches_sklearn():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    cm = confusion_matrix(torch.from_numpy(t), p)
    np.testing.assert_array_equal(cm, sk_confusion_matrix(t, p, labels=range(5)))
    assert confusion_matrix([0, 1], [1, 1], num_classes=4).shape == (4, 4)
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [1])
    with pytest.raises(ValueError, match="num_classes=2"):
        confusion_matrix([0, 3], [1, 1], num_classes=2)


def test_checkpoint_round_trip(tmp_path, digits):
    model = small_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, digits.train, digits.val, epochs=1, optimizer=opt, progress=False)
    path = save_checkpoint(tmp_path / "ck" / "digits.pt", model, opt, history, epoch=1, note="hi")

    fresh = small_model(seed=99)
    x = digits.test.tensors[0][:16]
    assert not torch.allclose(fresh.eval()(x), model.eval()(x))
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    info = load_checkpoint(path, fresh, fresh_opt)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    assert info["epoch"] == 1 and info["note"] == "hi"
    assert isinstance(info["history"], History) and info["history"] == history
    assert fresh_opt.state_dict()["state"].keys() == opt.state_dict()["state"].keys()

    bare = save_checkpoint(tmp_path / "bare.pt", model)
    assert load_checkpoint(bare, small_model())["history"] is None
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(bare, small_model(), torch.optim.SGD(small_model().parameters(), lr=1))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", model)
