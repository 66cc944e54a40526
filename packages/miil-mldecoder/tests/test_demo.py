import pytest

from miil.mldecoder.demo import MosaicNet, train_mosaic_head


@pytest.mark.slow
def test_ml_decoder_learns_held_out_mosaics():
    out = train_mosaic_head("ml_decoder", num_train=1600, num_test=300, epochs=4, batch_size=32)
    # well above the all-negative (constant score) floor on held-out handwriting
    assert 0.0 < out["constant_score_mAP"] < 0.3
    assert out["mAP"] > out["constant_score_mAP"] + 0.2


def test_mosaic_net_heads():
    with pytest.raises(ValueError, match="head must be"):
        MosaicNet("max")
    assert MosaicNet("gap").head[-1].out_features == 10
