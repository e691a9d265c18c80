"""Checkpoints and the DDP job file hold plain data: they load without running code (issue 13, item 14)."""

import json
import os

import pytest
import torch

from skipthink.checkpoints import CheckpointError, TRAINER_FILE, commit_checkpoint, latest_checkpoint, load_checkpoint, staging_dir, write_rng
from skipthink.config import load_config
from skipthink.items import TrainItem
from skipthink.train_worker import read_job, write_job
from skipthink.training import lr_factor, make_optimizer


class Planted:
    """A pickle payload: unpickling it runs `touch`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _trained(steps=3):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = make_optimizer(model, 1e-2, 0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor("cosine", 1, 10))
    for _ in range(steps):
        model(torch.randn(8, 4)).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return model, optimizer, scheduler


def _commit(out_dir, epoch=0):
    model, optimizer, scheduler = _trained()
    staging_dir(out_dir, epoch).mkdir(parents=True)
    write_rng(staging_dir(out_dir, epoch), 0)
    return commit_checkpoint(out_dir, epoch, model, optimizer, scheduler, {"epoch": epoch + 1, "run_key": "k"}), (model, optimizer, scheduler)


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    path, (model, optimizer, scheduler) = _commit(tmp_path)
    expected_draw = (torch.rand(3), __import__("random").random())
    fresh_model, fresh_opt, fresh_sched = _trained(steps=0)
    state = load_checkpoint(path, 0, fresh_model, fresh_opt, fresh_sched)
    assert state == {"epoch": 1, "run_key": "k"}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh_model.state_dict().values()))
    assert fresh_sched.state_dict()["last_epoch"] == 3 and fresh_opt.state_dict()["state"][0]["step"].item() == 3
    # The RNG restored from the checkpoint repeats the draws made right after it was written.
    assert torch.equal(torch.rand(3), expected_draw[0]) and __import__("random").random() == expected_draw[1]


@pytest.mark.parametrize("name", [TRAINER_FILE, "rng-0.pt"])
def test_a_planted_pickle_in_a_checkpoint_does_not_run(tmp_path, name):
    path, _ = _commit(tmp_path / "out")
    marker = tmp_path / "pwned"
    torch.save({"model": Planted(marker)} if name == TRAINER_FILE else Planted(marker), path / name)
    with pytest.raises(CheckpointError, match=rf"{name}: not a loadable checkpoint \(UnpicklingError"):
        load_checkpoint(path, 0, *_trained(steps=0))
    assert not marker.exists()


def test_a_truncated_checkpoint_is_a_checkpoint_error(tmp_path):
    path, _ = _commit(tmp_path)
    data = (path / TRAINER_FILE).read_bytes()
    (path / TRAINER_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{TRAINER_FILE}: not a loadable checkpoint"):
        load_checkpoint(path, 0, *_trained(steps=0))
    assert latest_checkpoint(tmp_path) == path  # what to do with it is the training loop's call


def test_ddp_job_file_is_json_and_round_trips_items(tmp_path):
    items = [
        TrainItem("0", 0, "Q?", "yes", "a. b. c.", ("a.", "b.", "c."), boundaries=(1, 2)),
        TrainItem("1", 2, "Q2?", "no", "d. e.", ("d.", "e."), skip_mask=(True, False)),
    ]
    cfg = load_config("smoke")
    job = write_job(tmp_path / "job.json", "stt", items, items[:1], tmp_path / "init", tmp_path / "out", cfg)
    raw = json.loads(job.read_text())  # plain JSON: a config dump and item rows
    assert raw["cfg"] == cfg.model_dump(mode="json") and raw["train_items"][0]["steps"] == ["a.", "b.", "c."]
    back = read_job(job)
    assert back["train_items"] == items and back["val_items"] == items[:1] and back["method"] == "stt"
    assert isinstance(back["train_items"][0].steps, tuple) and back["train_items"][1].boundaries is None


def test_a_pickled_job_file_is_refused(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    job = tmp_path / "job.json"
    job.write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(ValueError):  # not UTF-8 / not JSON: never unpickled
        read_job(job)
    assert not marker.exists()
