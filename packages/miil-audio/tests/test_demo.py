import numpy as np

from miil.audio.demo import DemoConfig, keyword_task, run_demo

TINY = DemoConfig(words=("yes", "no"), train_speakers=4, test_speakers=2, epochs=1, batch_size=4, mix_start_epoch=0)


def test_keyword_task_holds_out_voices_in_the_wild():
    data = keyword_task(TINY)
    assert len(data["train"]) == 8 and len(data["test_clean"]) == 4 and len(data["test"]) == 4 * TINY.wild_copies
    wild = np.stack([data["test"][i][0][0].numpy() for i in range(4)])
    clean = np.stack([data["test_clean"][i][0][0].numpy() for i in range(4)])
    assert not np.allclose(wild, clean, atol=1e-3)  # shifted and with a background sound
    assert all(data["test"][i][1] == data["test_clean"][i % 4][1] for i in range(len(data["test"])))


def test_demo_runs_and_passed_reflects_the_measurement(capsys):
    out = run_demo(config=TINY)
    m = out["metrics"]
    assert set(out) == {"passed", "metrics", "summary"}
    assert out["passed"] == (
        m["augmented_heldout_top1"] > m["baseline_heldout_top1"] and m["augmented_heldout_top1"] > 100
    )
    assert m["chance"] == 50.0 and "held-out keyword accuracy" in out["summary"]
    assert "paper's augmentations" in capsys.readouterr().out
