"""Networks: shapes, the time embedding against diffusers', conditioning inputs, and clear bad-input errors."""
import math

import pytest
import torch

from ddlearn import nets
from ddlearn.nets import MLP, Classifier, UNet, timestep_embedding


def test_timestep_embedding_matches_diffusers_and_the_formula():
    t = torch.tensor([0.0, 1.0, 17.5, 999.0])
    emb = timestep_embedding(t, 64)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(32) / 32)
    torch.testing.assert_close(emb, torch.cat([torch.sin(t[:, None] * freqs), torch.cos(t[:, None] * freqs)], 1))
    diffusers = pytest.importorskip("diffusers")
    from diffusers.models.embeddings import get_timestep_embedding

    torch.testing.assert_close(emb, get_timestep_embedding(t, 64, downscale_freq_shift=0), rtol=1e-5, atol=1e-5)
    assert timestep_embedding(t, 7).shape == (4, 7)


def test_mlp_shapes_and_fractional_t():
    net = MLP(T=100)
    x = torch.randn(5, 2)
    assert net(x, torch.tensor([0.0, 1.5, 50.0, 98.9, 99.0])).shape == (5, 2)
    assert net(x, 3).shape == (5, 2)  # a number is broadcast over the batch


def test_unet_shapes_zero_start_and_every_conditioning_input():
    net = UNet(image_size=16, base=16, T=1000)
    x = torch.randn(3, 1, 16, 16)
    out = net(x, torch.tensor([0.0, 10.0, 999.0]))
    assert out.shape == x.shape and (out == 0).all()  # last conv starts at zero: eps = 0
    cond = UNet(in_channels=3, image_size=8, base=16, channel_mults=(1, 2), attn_res=(4,), T=50,
                num_classes=10, cond_channels=2, context_dim=6)
    with torch.no_grad():  # the zero-initialised layers would hide every input: give them weights
        for p in cond.parameters():
            if p.ndim > 1 and (p == 0).all():
                p.normal_(0, 0.2)
    x = torch.randn(2, 3, 8, 8)
    base = cond(x, 5.0)
    assert base.shape == x.shape
    assert not torch.allclose(cond(x, 5.0, y=torch.tensor([1, 2])), base)
    torch.testing.assert_close(cond(x, 5.0, y=torch.tensor([10, 10])), base)  # null class = no label
    assert not torch.allclose(cond(x, 5.0, x_cond=torch.randn(2, 2, 8, 8)), base)
    assert not torch.allclose(cond(x, 5.0, context=torch.randn(2, 4, 6)), base)
    assert cond.null_class == 10


def test_digits_unet_is_cpu_sized():
    from ddlearn.recipe import build_net
    from ddlearn.recipes import RECIPES

    n = nets.n_params(build_net(RECIPES["digits"]))
    assert 300_000 <= n <= 1_000_000, n


def test_classifier_features_and_noise_aware_variant():
    clf = Classifier()
    x = torch.randn(4, 1, 16, 16)
    assert clf(x).shape == (4, 10) and clf.features(x).shape == (4, 64)
    noisy = Classifier(T=100)
    assert noisy(x, torch.full((4,), 30.0)).shape == (4, 10)
    with pytest.raises(ValueError, match="noise-aware"):
        noisy(x)
    with pytest.raises(ValueError, match="not noise-aware"):
        clf(x, 3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda n: n(torch.randn(4, 2), 0), ValueError, "x_t must have 4 dimensions"),
    (lambda n: n(torch.randn(4, 3, 16, 16), 0), ValueError, "x_t must have 1 channels"),
    (lambda n: n(torch.randn(4, 1, 8, 8), 0), ValueError, "16x16 images"),
    (lambda n: n(torch.randn(4, 1, 16, 16), torch.zeros(3)), ValueError, "t has 3 entries"),
    (lambda n: n(torch.randn(4, 1, 16, 16), torch.zeros(4, 1)), ValueError, "t must be a scalar or a 1-D"),
    (lambda n: n(torch.randn(4, 1, 16, 16), 100.0), ValueError, r"t must lie in \[0, 99\]"),
    (lambda n: n(torch.randn(4, 1, 16, 16), -1), ValueError, r"t must lie in"),
    (lambda n: n(torch.randn(4, 1, 16, 16), "5"), TypeError, "t must be a number"),
    (lambda n: n(torch.full((4, 1, 16, 16), float("nan")), 0), ValueError, "x_t contains 1024 non-finite"),
    (lambda n: n(torch.randn(4, 1, 16, 16), 0, y=torch.zeros(4, dtype=torch.long)), ValueError, "unconditional"),
    (lambda n: n(torch.randn(4, 1, 16, 16), 0, x_cond=torch.randn(4, 1, 16, 16)), ValueError, "cond_channels=0"),
    (lambda n: n(torch.randn(4, 1, 16, 16), 0, context=torch.randn(4, 2, 3)), ValueError, "context_dim=None"),
])
def test_unet_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call(UNet(image_size=16, base=16, T=100))


def test_conditioning_bad_input_names_the_argument():
    net = UNet(image_size=8, base=16, channel_mults=(1, 2), T=10, num_classes=3, cond_channels=1, context_dim=4)
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"y must hold labels in 0..2 \(or 3, the null class\)"):
        net(x, 0, y=torch.tensor([0, 4]))
    with pytest.raises(TypeError, match="y must be an integer tensor"):
        net(x, 0, y=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        net(x, 0, y=torch.tensor([0]))
    with pytest.raises(ValueError, match="x_cond must have shape"):
        net(x, 0, x_cond=torch.randn(2, 2, 8, 8))
    with pytest.raises(ValueError, match="context must have shape"):
        net(x, 0, context=torch.randn(2, 3, 5))


def test_mlp_and_constructor_bad_input():
    with pytest.raises(ValueError, match="x_t must have 2 channels"):
        MLP()(torch.randn(3, 3), 0)
    with pytest.raises(ValueError, match="image_size must be divisible"):
        UNet(image_size=10, channel_mults=(1, 2, 2))
    with pytest.raises(TypeError, match="T must be an int"):
        MLP(T=10.0)
    with pytest.raises(ValueError, match="unknown net name"):
        nets.build("resnet")
