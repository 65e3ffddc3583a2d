"""Guidance: the scale convention, and classifier guidance against closed forms on Gaussian mixtures."""
import pytest
import torch

from ddlearn import guidance, oracles, schedules


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class ToyCond(torch.nn.Module):
    """eps(x, t, y) = x * (y + 1) / 10 + t / 1000: a conditional 'network' with distinct answers per label."""

    num_classes, null_class = 3, 3

    def forward(self, x, t, *, y):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)
        return x * (y.to(x.dtype).reshape(-1, 1) + 1) / 10 + t / 1000


def test_cfg_scale_zero_and_one_are_unconditional_and_conditional():
    net = ToyCond()
    x = torch.randn(4, 2, generator=gen(1))
    t = torch.full((4,), 500.0)
    y = torch.tensor([0, 1, 2, 1])
    uncond = net(x, t, y=torch.full((4,), 3))
    cond = net(x, t, y=y)
    assert torch.allclose(guidance.classifier_free(net, y, 0.0)(x, t), uncond)
    assert torch.allclose(guidance.classifier_free(net, y, 1.0)(x, t), cond)
    # any other scale extrapolates linearly from the unconditional towards the conditional
    assert torch.allclose(guidance.classifier_free(net, y, 3.0)(x, t), uncond + 3 * (cond - uncond), atol=1e-6)
    # one int label is broadcast
    assert torch.allclose(guidance.classifier_free(net, 2, 2.0)(x, t),
                          guidance.classifier_free(net, torch.full((4,), 2), 2.0)(x, t))


def test_cfg_on_a_mixture_oracle_at_scale_one_is_the_component():
    mix = oracles.named_mixture("grid9")
    sch = schedules.cosine(100)
    cond = guidance.MixtureConditionalEps(mix, sch)
    x = torch.randn(6, 2, generator=gen(2), dtype=torch.float64)
    t = torch.full((6,), 40.0)
    comp = oracles.GaussianMixture(mix.means[4:5], mix.covs[4:5])
    want = comp.eps(x, sch.alpha_bar(t))
    assert torch.allclose(guidance.classifier_free(cond, 4, 1.0)(x, t), want)
    assert torch.allclose(guidance.classifier_free(cond, 4, 0.0)(x, t), mix.eps(x, sch.alpha_bar(t)))


def test_classifier_guidance_gradient_on_two_gaussians():
    """Two equal isotropic Gaussians: log p(y=1 | x) is linear in x with a known slope."""
    m0, m1, v = torch.tensor([-1.0, 0.5]), torch.tensor([1.0, -0.5]), 0.3 ** 2
    mix = oracles.GaussianMixture(torch.stack([m0, m1]).double(), [v, v])
    sch = schedules.linear(200)
    t = torch.full((5,), 60.0)
    ab = sch.alpha_bar(t)[0]
    x = torch.randn(5, 2, generator=gen(3), dtype=torch.float64)
    g = guidance.classifier_grad(guidance.MixtureClassifier(mix, sch), x, t, torch.ones(5, dtype=torch.long))
    # at alpha_bar: components N(sqrt(ab) m_k, ab v + 1 - ab); grad log p(1|x) = (1 - p1) sqrt(ab) (m1 - m0) / s2
    s2 = ab * v + 1 - ab
    p1 = mix.responsibilities(x, ab)[:, 1]
    want = (1 - p1)[:, None] * (ab.sqrt() * (m1 - m0).double() / s2)[None, :]
    assert torch.allclose(g, want, atol=1e-8)
    # the guided eps moves against the gradient, by scale * sqrt(1 - alpha_bar)
    base = mix.eps_model(sch)
    for scale in (0.0, 1.0, 2.5):
        guided = guidance.classifier_guidance(base, guidance.MixtureClassifier(mix, sch), 1, scale, sch)(x, t)
        assert torch.allclose(guided, base(x, t) - scale * (1 - ab).sqrt() * want, atol=1e-8)


def test_classifier_guidance_at_scale_one_gives_the_conditional_eps():
    """Bayes: grad log p(x|y) = grad log p(x) + grad log p(y|x), exactly, with the Bayes classifier."""
    mix = oracles.named_mixture("ring8")
    sch = schedules.cosine(100)
    x = torch.randn(7, 2, generator=gen(4), dtype=torch.float64)
    t = torch.full((7,), 70.0)
    guided = guidance.classifier_guidance(mix.eps_model(sch), guidance.MixtureClassifier(mix, sch), 3, 1.0, sch)
    want = guidance.MixtureConditionalEps(mix, sch)(x, t, y=torch.full((7,), 3))
    assert torch.allclose(guided(x, t), want, atol=1e-8)


def test_guidance_runs_inside_no_grad():
    mix = oracles.named_mixture("two")
    sch = schedules.linear(50)
    guided = guidance.classifier_guidance(mix.eps_model(sch), guidance.MixtureClassifier(mix, sch), 0, 2.0, sch)
    with torch.no_grad():
        out = guided(torch.randn(3, 2, dtype=torch.float64), torch.full((3,), 10.0))
    assert out.shape == (3, 2) and torch.isfinite(out).all()


def test_bad_inputs():
    net = ToyCond()
    mix = oracles.named_mixture("two")
    sch = schedules.linear(50)
    clf = guidance.MixtureClassifier(mix, sch)
    with pytest.raises(ValueError, match="scale"):
        guidance.classifier_free(net, 1, -0.5)
    with pytest.raises(ValueError, match="scale"):
        guidance.classifier_guidance(mix.eps_model(sch), clf, 0, -1.0, sch)
    with pytest.raises(ValueError, match=r"classes in 0\.\.2"):
        guidance.classifier_free(net, 3, 2.0)  # 3 is the null class, not a class one may ask for
    with pytest.raises(ValueError, match=r"classes in 0\.\.1"):
        guidance.classifier_guidance(mix.eps_model(sch), clf, 5, 1.0, sch)
    with pytest.raises(TypeError, match="class label"):
        guidance.classifier_free(net, 1.5, 2.0)
    with pytest.raises(ValueError, match="null_class"):
        guidance.classifier_free(lambda x, t, y: x, 1, 2.0)
    with pytest.raises(ValueError, match="one per item"):
        guidance.classifier_free(net, torch.tensor([0, 1]), 2.0)(torch.zeros(3, 2), torch.zeros(3))


def test_guidance_wraps_the_book_networks_for_the_book_samplers():
    """A class-conditional UNet and a noise-aware Classifier run through sample_ddim, guided both ways."""
    from ddlearn import nets
    from ddlearn.samplers import sample_ddim

    sch = schedules.linear(100)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = nets.UNet(in_channels=1, image_size=8, base=8, channel_mults=(1, 2), attn_res=(), T=100, num_classes=3)
        for p in unet.parameters():  # blocks start as identities and the last conv at zero: make eps depend on y
            if not p.detach().abs().max() > 0:
                torch.nn.init.normal_(p, std=0.1)
        clf = nets.Classifier(in_channels=1, num_classes=3, width=8, feature_dim=8, T=100)
    x_T = torch.randn(4, 1, 8, 8, generator=gen(5))
    y = torch.tensor([0, 1, 2, 0])
    outs = {}
    for name, model in {
        "uncond": guidance.classifier_free(unet, y, 0.0),
        "cfg": guidance.classifier_free(unet, y, 3.0),
        "cg": guidance.classifier_guidance(guidance.classifier_free(unet, y, 0.0), clf, y, 5.0, sch),
    }.items():
        outs[name] = sample_ddim(model, x_T, sch, 4, progress=False)
        assert outs[name].shape == x_T.shape and torch.isfinite(outs[name]).all()
    assert not torch.allclose(outs["uncond"], outs["cfg"])
    assert not torch.allclose(outs["uncond"], outs["cg"])
    with pytest.raises(ValueError, match=r"classes in 0\.\.2"):
        guidance.classifier_free(unet, 3, 2.0)  # the UNet's null class is not a class to ask for
