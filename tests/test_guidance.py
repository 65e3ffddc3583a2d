"""Guidance: the scale convention, classifier guidance against closed forms on Gaussian mixtures, and
classifier-free guidance over several conditions against the formula by hand."""
import pytest
import torch

from ddlearn import guidance, oracles, schedules

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: thread hand-offs would dominate


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


# ---- classifier-free guidance over any conditions ------------------------------------------------

class ToyVideo(torch.nn.Module):
    """A Chapter 08-shaped toy: ``model(x_t, t, image=..., prompt=...)`` on clips (B, C, F, H, W).

    Non-linear in both conditions and their interaction, so every term of the
    guidance formula matters; items are independent (batching changes nothing).
    """

    def __init__(self, prompts=5):
        super().__init__()
        self.table = torch.linspace(-1.0, 1.5, prompts + 1)  # the last prompt id is the null prompt
        self.calls = []

    def forward(self, x, t, *, image, prompt):
        self.calls.append(x.shape[0])
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1, 1)
        p = self.table[prompt].reshape(-1, 1, 1, 1, 1)
        return torch.tanh(x + image[:, :, None]) * p + torch.sin(image[:, :, None] * p) + t / 1000


def video_case(B=3, seed=6):
    g = gen(seed)
    x = torch.randn(B, 2, 4, 3, 3, generator=g)
    image = torch.randn(B, 2, 3, 3, generator=g)
    conds = {"image": (image, torch.zeros(1, 2, 3, 3)), "prompt": (torch.tensor([0, 2, 4])[:B], torch.tensor([5]))}
    return x, torch.full((B,), 300.0), conds


def test_cfg_two_conditions_scales_one_and_zero_are_exactly_the_conditional_and_null_models():
    net = ToyVideo()
    x, t, conds = video_case()
    (img, img0), (p, p0) = conds["image"], conds["prompt"]
    B = x.shape[0]
    cond = net(x, t, image=img, prompt=p)
    null = net(x, t, image=img0.expand_as(img), prompt=p0.expand(B))
    assert torch.equal(guidance.classifier_free(net, conds, {"image": 1.0, "prompt": 1.0})(x, t), cond)
    assert torch.equal(guidance.classifier_free(net, conds, {"image": 0.0, "prompt": 0.0})(x, t), null)
    assert torch.equal(guidance.classifier_free(net, conds, 1.0)(x, t), cond)  # one number for all
    assert torch.equal(guidance.classifier_free(net, conds, 0)(x, t), null)
    net.calls.clear()
    guidance.classifier_free(net, conds, {"image": 1.0, "prompt": 1.0})(x, t)
    assert net.calls == [B]  # one prediction needed: one call, no doubled batch


def test_cfg_two_conditions_against_the_formula_by_hand():
    """eps = eps(0,0) + s1 (eps(c1,0) - eps(0,0)) + s2 (eps(c1,c2) - eps(c1,0)), image first, then prompt."""
    net = ToyVideo()
    x, t, conds = video_case()
    (img, img0), (p, p0) = conds["image"], conds["prompt"]
    B = x.shape[0]
    e00 = net(x, t, image=img0.expand_as(img), prompt=p0.expand(B))
    e10 = net(x, t, image=img, prompt=p0.expand(B))
    e11 = net(x, t, image=img, prompt=p)
    e01 = net(x, t, image=img0.expand_as(img), prompt=p)
    s1, s2 = 1.5, 3.0
    net.calls.clear()
    got = guidance.classifier_free(net, conds, {"image": s1, "prompt": s2})(x, t)
    assert net.calls == [3 * B]  # three predictions in one batched call
    torch.testing.assert_close(got, e00 + s1 * (e10 - e00) + s2 * (e11 - e10), rtol=0, atol=1e-6)
    # the order of the conditions is the order of the mapping: prompt first is another formula
    swapped = guidance.classifier_free(net, {"prompt": conds["prompt"], "image": conds["image"]},
                                       {"image": s1, "prompt": s2})(x, t)
    torch.testing.assert_close(swapped, e00 + s2 * (e01 - e00) + s1 * (e11 - e01), rtol=0, atol=1e-6)
    assert not torch.allclose(got, swapped, atol=1e-3)
    # one scale for both guides them jointly: eps(0,0) + s (eps(c1,c2) - eps(0,0)), two predictions
    net.calls.clear()
    joint = guidance.classifier_free(net, conds, 2.5)(x, t)
    assert net.calls == [2 * B]
    torch.testing.assert_close(joint, e00 + 2.5 * (e11 - e00), rtol=0, atol=1e-6)
    # image at 1: eps(0,0) drops out of the formula and is not evaluated
    net.calls.clear()
    half = guidance.classifier_free(net, conds, {"image": 1.0, "prompt": 4.0})(x, t)
    assert net.calls == [2 * B]
    torch.testing.assert_close(half, e10 + 4.0 * (e11 - e10), rtol=0, atol=1e-6)


def test_cfg_three_conditions_on_the_unet_label_image_and_tokens():
    """The book's UNet with a label, concatenated channels and context tokens: the n-condition formula."""
    from ddlearn import nets

    with torch.random.fork_rng():
        torch.manual_seed(1)
        unet = nets.UNet(in_channels=1, image_size=8, base=8, channel_mults=(1, 2), attn_res=(4,), T=100,
                         num_classes=3, cond_channels=1, context_dim=4)
        for p in unet.parameters():  # zero-initialised layers would hide the conditions
            if not p.detach().abs().max() > 0:
                torch.nn.init.normal_(p, std=0.1)
    unet.eval()
    g = gen(7)
    B = 2
    x, t = torch.randn(B, 1, 8, 8, generator=g), torch.tensor([20.0, 70.0])
    y, img, ctx = torch.tensor([0, 2]), torch.randn(B, 1, 8, 8, generator=g), torch.randn(B, 3, 4, generator=g)
    conds = {"y": (y, torch.tensor([3])), "x_cond": (img, torch.zeros(1, 1, 8, 8)), "context": (ctx, torch.zeros(1, 3, 4))}
    nulls = {"y": torch.full((B,), 3), "x_cond": torch.zeros(B, 1, 8, 8), "context": torch.zeros(B, 3, 4)}
    names = list(conds)
    with torch.no_grad():
        e = [unet(x, t, **{n: (conds[n][0] if i < k else nulls[n]) for i, n in enumerate(names)}) for k in range(4)]
        s = [2.0, 0.5, 3.0]
        want = e[0] + s[0] * (e[1] - e[0]) + s[1] * (e[2] - e[1]) + s[2] * (e[3] - e[2])
        batched = guidance.classifier_free(unet, conds, dict(zip(names, s)))(x, t)
        single = guidance.classifier_free(unet, conds, dict(zip(names, s)), batched=False)(x, t)
        torch.testing.assert_close(batched, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(single, want, rtol=0, atol=1e-6)  # the same calls as by hand
        torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
        assert torch.equal(guidance.classifier_free(unet, conds, 1.0)(x, t), e[3])
        assert torch.equal(guidance.classifier_free(unet, conds, 0.0)(x, t), e[0])
        # a null of None leaves the keyword out: the UNet's own default (zeros for x_cond) is that null
        dropped = dict(conds, x_cond=(img, None))
        torch.testing.assert_close(guidance.classifier_free(unet, dropped, dict(zip(names, s)))(x, t), want,
                                   rtol=0, atol=1e-6)


def test_cfg_batched_equals_unbatched():
    net = ToyVideo()
    x, t, conds = video_case()
    for scales in ({"image": 1.5, "prompt": 3.0}, {"image": 0.0, "prompt": 2.0}, 4.0, {"image": 2.0, "prompt": 1.0}):
        net.calls.clear()
        a = guidance.classifier_free(net, conds, scales)(x, t)
        n_batched = len(net.calls)
        b = guidance.classifier_free(net, conds, scales, batched=False)(x, t)
        assert n_batched == 1 and len(net.calls) > 1
        assert torch.equal(a, b), scales  # items are independent in the toy: the same numbers exactly


def test_cfg_label_case_is_the_one_condition_case_and_keeps_its_batching():
    """classifier_free(net, y, s): one call [conditional; null] of 2B items, eps_u + s (eps_c - eps_u), bit for bit."""
    from ddlearn import nets

    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = nets.UNet(in_channels=1, image_size=8, base=8, channel_mults=(1, 2), attn_res=(), T=100, num_classes=3)
        for p in unet.parameters():
            if not p.detach().abs().max() > 0:
                torch.nn.init.normal_(p, std=0.1)
    x, y = torch.randn(4, 1, 8, 8, generator=gen(8)), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        both = unet(torch.cat([x, x]), torch.full((8,), 40.0), y=torch.cat([y, torch.full((4,), 3)]))
        want = both[4:] + 3.0 * (both[:4] - both[4:])
        assert torch.equal(guidance.classifier_free(unet, y, 3.0)(x, 40), want)
        assert torch.equal(guidance.classifier_free(unet, y, 3.0)(x, 40),
                           guidance.classifier_free(unet, {"y": (y, torch.tensor([3]))}, 3.0)(x, 40))
        assert torch.equal(guidance.classifier_free(unet, y, 1.0)(x, 40), unet(x, 40, y=y))
        assert torch.equal(guidance.classifier_free(unet, 2, 0.0)(x, 40), unet(x, 40, y=torch.full((4,), 3)))
    seen = []

    def recording(x_t, t, *, y):
        seen.append((x_t.shape[0], torch.as_tensor(t).tolist(), y.tolist()))
        return unet(x_t, t, y=y)

    recording.null_class, recording.num_classes = 3, 3
    with torch.no_grad():
        for scale in (0.0, 1.0, 3.0):
            guidance.classifier_free(recording, y, scale)(x, 40)
    assert seen == [(4, 40, [3, 3, 3, 3]), (4, 40, [0, 1, 2, 0]), (8, [40.0] * 8, [0, 1, 2, 0, 3, 3, 3, 3])]


def test_cfg_conditions_bad_inputs():
    net = ToyVideo()
    x, t, conds = video_case()
    with pytest.raises(ValueError, match="unknown condition 'text' in scales"):
        guidance.classifier_free(net, conds, {"image": 1.0, "text": 2.0})
    with pytest.raises(ValueError, match="no scale for condition.*'prompt'"):
        guidance.classifier_free(net, conds, {"image": 1.0})
    with pytest.raises(ValueError, match=r"scales\['prompt'\] must be >= 0"):
        guidance.classifier_free(net, conds, {"image": 1.0, "prompt": -2.0})
    with pytest.raises(ValueError, match="scale must be >= 0"):
        guidance.classifier_free(net, conds, -1.0)
    with pytest.raises(TypeError, match="scale must be a number"):
        guidance.classifier_free(net, conds, "3")
    with pytest.raises(ValueError, match=r"null of condition 'image' must have its value's shape \(3, 2, 3, 3\)"):
        guidance.classifier_free(net, dict(conds, image=(conds["image"][0], torch.zeros(1, 2, 4, 4))), 2.0)
    with pytest.raises(ValueError, match="null of condition 'image'"):
        guidance.classifier_free(net, dict(conds, image=(conds["image"][0], torch.zeros(2, 2, 3, 3))), 2.0)
    with pytest.raises(TypeError, match="null of condition 'prompt' must have its value's dtype"):
        guidance.classifier_free(net, dict(conds, prompt=(conds["prompt"][0], torch.tensor([5.0]))), 2.0)
    with pytest.raises(TypeError, match=r"condition 'image' must be a pair \(value, null\)"):
        guidance.classifier_free(net, dict(conds, image=conds["image"][0]), 2.0)
    with pytest.raises(TypeError, match="value of condition 'image' must be a tensor"):
        guidance.classifier_free(net, dict(conds, image=("cat", None)), 2.0)
    with pytest.raises(ValueError, match="at least one condition"):
        guidance.ClassifierFreeGuidance(net, {}, 2.0)
    with pytest.raises(TypeError, match="conditions must be a mapping"):
        guidance.ClassifierFreeGuidance(net, [conds["image"]], 2.0)
    with pytest.raises(TypeError, match="null_class and num_classes are for class labels"):
        guidance.classifier_free(net, conds, 2.0, null_class=5)
    with pytest.raises(TypeError, match="cond_model must be callable"):
        guidance.classifier_free(3, conds, 2.0)
    with pytest.raises(ValueError, match=r"condition 'image' must hold one item or one per item \(2\), got 3"):
        guidance.classifier_free(net, conds, 2.0)(x[:2], t[:2])
    with pytest.raises(ValueError, match=r"cond_model returned shape \(1, 2, 4, 3, 3\) at classifier-free guidance"):
        guidance.classifier_free(lambda x, t, **kw: x[:1], conds, 2.0)(x, t)
