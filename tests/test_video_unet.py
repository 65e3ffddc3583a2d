"""The space-time UNet of Chapter 08: shapes, streams, gate, frame order, dropout masks, guidance, bad input."""
from __future__ import annotations

import pytest
import torch

from ddlearn import guidance, losses, nets, schedules, video
from ddlearn.data import clips as C
from ddlearn.nets.video_unet import DualCrossAttention, FirstFrameAttention, VideoUNet, position_embedding_2d

SMALL = dict(image_size=16, base=16, T=100)


def _randomise(net, seed=0):
    """Give every parameter random values (zero-initialised output layers would hide everything)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net.eval()


def _inputs(B=2, size=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 3, 8, size, size, generator=g)
    image = torch.rand(B, 3, size, size, generator=g) * 2 - 1
    prompt = C.encode_prompt(["up-left", "bounce"][:B] + ["still"] * max(0, B - 2))
    stride = torch.tensor([1, 3, 2, 4][:B])
    return x, image, prompt, stride


@pytest.mark.parametrize("kw", [dict(), dict(prompt_place="time"), dict(prompt_place="cross"),
                                dict(detail=False), dict(context=False), dict(gate="fixed"),
                                dict(target="frames"), dict(frame_embed=False),
                                dict(spatial_attn="first_frame", attn_res=(8, 4)),
                                dict(image_size=32, patch=2, channel_mults=(1, 2))])
def test_shapes_and_zero_start(kw):
    net = VideoUNet(**{**SMALL, **kw})
    size = net.image_size
    x, image, prompt, stride = _inputs(size=size)
    out = net(x, torch.tensor([3.0, 70.0]), image=image, prompt=prompt, stride=stride)
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out)), "zero-initialised last layer: an untrained net predicts eps = 0"
    out = _randomise(net)(x, 5, image=image, prompt=prompt, stride=stride)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_registered_and_buildable():
    assert nets.NETS["video_unet"] is VideoUNet
    assert isinstance(nets.build("video_unet", **SMALL), VideoUNet)


def test_every_condition_reaches_the_output():
    net = _randomise(VideoUNet(**SMALL))
    x, image, prompt, stride = _inputs()
    base = net(x, 10, image=image, prompt=prompt, stride=stride)
    assert not torch.allclose(base, net(x, 10, image=-image, prompt=prompt, stride=stride))
    assert not torch.allclose(base, net(x, 10, image=image, prompt=prompt.flip(0), stride=stride))
    assert not torch.allclose(base, net(x, 10, image=image, prompt=prompt, stride=stride + 0.5))
    assert not torch.allclose(base, net(x, 60, image=image, prompt=prompt, stride=stride))
    # the items of a batch are independent
    one = net(x[:1], 10, image=image[:1], prompt=prompt[:1], stride=stride[:1])
    assert torch.allclose(one, base[:1], atol=1e-5)


def test_streams_switch_off():
    x, image, prompt, stride = _inputs()
    ctx_only = _randomise(VideoUNet(**SMALL, detail=False))
    assert ctx_only.conv_in.in_channels == 3, "no conditioning frame concatenated"
    det_only = _randomise(VideoUNet(**SMALL, context=False))
    assert not hasattr(det_only, "qformer") and det_only.gates() == []
    # with no context stream and the prompt only in the time embedding, there is no cross-attention at all
    plain = VideoUNet(**SMALL, context=False, prompt_place="time")
    assert not any(isinstance(m, DualCrossAttention) for m in plain.modules())
    for net in (ctx_only, det_only):
        a = net(x, 10, image=image, prompt=prompt, stride=stride)
        b = net(x, 10, image=image.flip(0), prompt=prompt, stride=stride)
        assert not torch.allclose(a, b), "the image still matters through the remaining stream"


def test_gate_is_one_plus_tanh_alpha_and_scales_the_image_stream():
    net = VideoUNet(**SMALL)
    gates = net.gates()
    assert len(gates) >= 2 and all(g == 1.0 for g in gates), "alpha starts at 0: gate 1"
    layer = next(m for m in net.modules() if isinstance(m, DualCrossAttention))
    with torch.no_grad():
        layer.alpha.fill_(0.5)
    assert abs(layer.gate().item() - (1 + torch.tanh(torch.tensor(0.5)).item())) < 1e-7
    # at alpha -> -inf the image tokens are switched off in that layer: identical to a prompt-only layer
    _randomise(net)
    x, image, prompt, stride = _inputs()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, DualCrossAttention):
                m.alpha.fill_(-1e4)
    off = net(x, 10, image=image, prompt=prompt, stride=stride)
    saved = {}
    for i, m in enumerate(net.modules()):
        if isinstance(m, DualCrossAttention):
            saved[i], m.kv_image = m.kv_image, None
    no_image_tokens = net(x, 10, image=image, prompt=prompt, stride=stride)
    assert torch.allclose(off, no_image_tokens, atol=1e-5)
    fixed = VideoUNet(**SMALL, gate="fixed")
    assert all(g == 1.0 for g in fixed.gates()) and not any("alpha" in n for n, _ in fixed.named_parameters())


def test_frame_order_matters():
    """Permuting the frames is not the same as permuting the output: the net knows which frame is which."""
    for kw in (dict(), dict(frame_embed=False)):
        net = _randomise(VideoUNet(**SMALL, **kw))
        x, image, prompt, stride = _inputs()
        perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
        out = net(x, 10, image=image, prompt=prompt, stride=stride)
        out_perm = net(x[:, :, perm], 10, image=image, prompt=prompt, stride=stride)
        assert not torch.allclose(out_perm, out[:, :, perm], atol=1e-4)


def test_encode_decode_what_is_diffused():
    x, image, _, _ = _inputs()
    x = x.clamp(-1, 1)
    change = VideoUNet(**SMALL, target="change")
    z = change.encode(x, image)
    assert torch.allclose(z, (x - image[:, :, None]) / 2)
    assert torch.allclose(change.decode(z, image), x, atol=1e-6)
    frames = VideoUNet(**SMALL, target="frames")
    assert torch.equal(frames.encode(x, image), x) and torch.equal(frames.decode(x, image), x)
    # a clip conditioned on its own first frame: frame 0 of the change is exactly zero
    assert torch.equal(change.encode(x, x[:, :, 0])[:, :, 0], torch.zeros_like(image))


def test_dropout_masks_follow_dynamicrafter():
    """u < p: prompt only; p <= u < 2p: both; 2p <= u < 3p: image only; the rest keep both."""
    B, p = 20000, 0.05
    net = VideoUNet(**SMALL)
    cond = {"image": torch.rand(B, 3, 16, 16) + 1, "prompt": torch.randint(1, 7, (B, 2))}
    g = torch.Generator().manual_seed(0)
    out, masks = losses.drop_conditions(cond, net.null_conditions(B), p, generator=g)
    u = torch.rand(B, generator=torch.Generator().manual_seed(0))
    assert torch.equal(masks["prompt"], u < 2 * p) and torch.equal(masks["image"], (u >= p) & (u < 3 * p))
    dp, di = masks["prompt"], masks["image"]
    for share, expect in (((dp & ~di).float().mean(), p), ((dp & di).float().mean(), p), ((~dp & di).float().mean(), p)):
        assert abs(share - expect) < 0.006
    assert (out["image"][di] == 0).all() and (out["image"][~di] == cond["image"][~di]).all()
    assert (out["prompt"][dp] == 0).all() and (out["prompt"][~dp] == cond["prompt"][~dp]).all()
    same, m0 = losses.drop_conditions(cond, net.null_conditions(B), 0.0, generator=g)
    assert not m0["image"].any() and torch.equal(same["prompt"], cond["prompt"])
    with pytest.raises(ValueError, match="p_uncond"):
        losses.drop_conditions(cond, net.null_conditions(B), 0.5)


def test_image_to_video_loss_runs_both_ways_and_is_deterministic():
    net = _randomise(VideoUNet(**SMALL))
    sch = schedules.linear(100)
    d = C.clips(4, size=16, seed=2)
    cond = {"prompt": d["prompt"], "stride": d["stride"]}
    for cf in ("first", "random"):
        a = losses.image_to_video_loss(net, d["x"], sch, generator=torch.Generator().manual_seed(1), cond=cond,
                                       cond_frame=cf, p_uncond=0.1)
        b = losses.image_to_video_loss(net, d["x"], sch, generator=torch.Generator().manual_seed(1), cond=cond,
                                       cond_frame=cf, p_uncond=0.1)
        assert a.ndim == 0 and torch.isfinite(a) and a == b
    with pytest.raises(ValueError, match="cond_frame"):
        losses.image_to_video_loss(net, d["x"], sch, cond=cond, cond_frame="last")


def test_motion_weight_weighs_the_pixels_that_change():
    net = _randomise(VideoUNet(**SMALL))
    sch = schedules.linear(100)
    d = C.clips(4, size=16, seed=2)
    cond = {"prompt": d["prompt"], "stride": d["stride"]}
    x = d["x"].clone()
    run = lambda **kw: losses.image_to_video_loss(net, x, sch, generator=torch.Generator().manual_seed(1),  # noqa: E731
                                                  cond=cond, **kw)
    plain, zero, heavy = run(), run(motion_weight=0.0), run(motion_weight=4.0)
    assert plain == zero and torch.isfinite(heavy) and heavy != plain
    assert torch.equal(x, d["x"])  # the caller's clips untouched
    # still clips have no moving pixel: every weight is 1, the plain loss
    still = d["x"][:, :, :1].expand_as(d["x"]).contiguous()
    a = losses.image_to_video_loss(net, still, sch, generator=torch.Generator().manual_seed(1), cond=cond)
    b = losses.image_to_video_loss(net, still, sch, generator=torch.Generator().manual_seed(1), cond=cond,
                                   motion_weight=4.0)
    assert torch.allclose(a, b)
    with pytest.raises(ValueError, match="motion_weight"):
        run(motion_weight=-1.0)


def test_two_scale_guidance_at_one_is_the_conditional_model():
    net = _randomise(VideoUNet(**SMALL))
    x, image, prompt, stride = _inputs()
    t = torch.full((2,), 30.0)
    cond = net(x, t, image=image, prompt=prompt, stride=stride)
    g = video.guided(net, image, prompt, stride, image_scale=1.0, prompt_scale=1.0)
    assert torch.allclose(g(x, t), cond, atol=1e-6)
    null = net(x, t, image=torch.zeros_like(image), prompt=torch.zeros_like(prompt), stride=stride)
    assert torch.allclose(video.guided(net, image, prompt, stride, image_scale=0.0, prompt_scale=0.0)(x, t), null, atol=1e-6)
    # nested order: eps(0,0) + s_i (eps(c,0) - eps(0,0)) + s_p (eps(c,p) - eps(c,0))
    img_only = net(x, t, image=image, prompt=torch.zeros_like(prompt), stride=stride)
    want = null + 1.5 * (img_only - null) + 3.0 * (cond - img_only)
    got = video.guided(net, image, prompt, stride, image_scale=1.5, prompt_scale=3.0)(x, t)
    assert torch.allclose(got, want, atol=1e-5)
    assert isinstance(g, guidance.ClassifierFreeGuidance)


def test_bad_input_is_named():
    net = VideoUNet(**SMALL)
    x, image, prompt, stride = _inputs()
    with pytest.raises(ValueError, match="8 frames"):
        net(x[:, :, :6], 3, image=image, prompt=prompt, stride=stride)
    with pytest.raises(ValueError, match="16x16"):
        net(torch.zeros(2, 3, 8, 32, 32), 3)
    with pytest.raises(ValueError, match="3 channels"):
        net(x[:, :1], 3)
    with pytest.raises(ValueError, match="5 dimensions"):
        net(x[:, :, 0], 3)
    with pytest.raises(ValueError, match="image must have shape"):
        net(x, 3, image=image[:, :, :8, :8])
    with pytest.raises(ValueError, match="token ids in 0..6"):
        net(x, 3, prompt=torch.full((2, 2), 9))
    with pytest.raises(TypeError, match="prompt must be an integer tensor"):
        net(x, 3, prompt=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="stride must lie in"):
        net(x, 3, stride=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 99\]"):
        net(x, 100)
    with pytest.raises(ValueError, match="unknown prompt 'sideways'"):
        video.animate(net, schedules.linear(100), image, "sideways", 2, steps=2, progress=False)
    with pytest.raises(ValueError, match="image must have shape"):
        video.animate(net, schedules.linear(100), torch.zeros(2, 1, 16, 16), "up", 2, steps=2, progress=False)
    for kw, match in ((dict(target="noise"), "target"), (dict(gate="sometimes"), "gate"),
                      (dict(prompt_place="everywhere"), "prompt_place"), (dict(image_size=18), "divisible by 4"),
                      (dict(spatial_attn="global"), "spatial_attn")):
        with pytest.raises(ValueError, match=match):
            VideoUNet(**{**SMALL, **kw})


def test_animate_returns_a_clip_that_starts_near_the_image_for_the_zero_net():
    """An untrained (zero-output) change-model's DDIM lands on z = 0: every frame is the image."""
    net = VideoUNet(**SMALL)
    sch = schedules.linear(100)
    _, image, _, _ = _inputs()
    clip = video.animate(net, sch, image, ["up", "left"], [1, 2], steps=5, generator=torch.Generator().manual_seed(0),
                         progress=False)
    assert clip.shape == (2, 3, 8, 16, 16)
    # eps = 0 means x0_hat = x_t / sqrt(alpha_bar); DDIM then keeps z proportional to x_T, shrinking to
    # sqrt(alpha_bar_0) x_T / sqrt(alpha_bar_T) ... not 0; so only check range and determinism here
    again = video.animate(net, sch, image, ["up", "left"], [1, 2], steps=5, generator=torch.Generator().manual_seed(0),
                          progress=False)
    assert torch.equal(clip, again) and clip.min() >= -1 and clip.max() <= 1


def test_change_scale_encodes_decodes_and_sets_the_clamp():
    """z = s (x - c): decode inverts encode for any s; the sampler clamps the clean estimate to +-2s."""
    x, image, prompt, stride = _inputs()
    clip = x.clamp(-1, 1)
    for s in (0.5, 1.0, 2.0):
        net = VideoUNet(**SMALL, change_scale=s)
        z = net.encode(clip, image)
        assert torch.allclose(z, s * (clip - image[:, :, None]))
        assert torch.allclose(net.decode(z, image), clip, atol=1e-6)
        assert net.z_bound == 2 * s and z.abs().max() <= net.z_bound + 1e-6
    assert VideoUNet(**SMALL, target="frames", change_scale=3.0).z_bound == 1.0
    seen = []
    net = _randomise(VideoUNet(**SMALL, change_scale=2.0))
    video.animate(net, schedules.linear(100), image, "up", 2, steps=3, clip=(-1.0, 1.0), progress=False,
                  generator=torch.Generator().manual_seed(0), callback=lambda st: seen.append(st.x0.abs().max()))
    assert max(seen) <= 4.0 + 1e-5       # clamped to +-2s, not to +-1
    assert max(seen) > 1.0
    with pytest.raises(ValueError, match="change_scale"):
        VideoUNet(**SMALL, change_scale=0.0)
    with pytest.raises(TypeError, match="change_scale"):
        VideoUNet(**SMALL, change_scale="big")


def test_2d_positions_depend_only_on_the_offset():
    """Sinusoidal positions: <pe(p), pe(p')> is a function of p - p' alone, and shifting by d is a rotation."""
    side, ch = 8, 32
    pe = position_embedding_2d(side, ch).double()
    assert pe.shape == (side * side, ch) and pe.abs().max() <= 1
    gram = pe @ pe.T
    idx = lambda x, y: y * side + x  # noqa: E731
    # same offset (2, -1) from two different places: the same inner product
    assert torch.isclose(gram[idx(1, 3), idx(3, 2)], gram[idx(4, 5), idx(6, 4)], atol=1e-9)
    # a pixel is closest to itself (its own row of the Gram matrix peaks on the diagonal)
    assert (gram.argmax(1) == torch.arange(side * side)).all()
    # every position is distinct
    assert torch.cdist(pe, pe).add(torch.eye(side * side) * 9).min() > 0.1
    assert position_embedding_2d(4, 2).abs().max() == 0   # under 4 channels: no room, zeros


def test_first_frame_attention_reads_frame_zero_and_its_own_frame_only():
    torch.manual_seed(0)
    B, Fr, C, side = 2, 5, 16, 8
    attn = FirstFrameAttention(C, Fr, side, groups=4, heads=4)
    h = torch.randn(B * Fr, C, side, side)
    assert torch.equal(attn(h), h)                       # output projection zero at start: the identity
    torch.nn.init.normal_(attn.proj.weight, std=0.3)
    h0 = h.clone()
    out = attn(h)
    assert torch.equal(h, h0)                             # the input is not modified
    for j, reaches in ((0, {0, 1, 2, 3, 4}), (2, {2}), (4, {4})):   # changing frame j of clip 0 moves ...
        hj = h.clone()
        hj[j] += torch.randn(C, side, side)
        moved = {f for f in range(Fr) if not torch.allclose(attn(hj)[f], out[f], atol=1e-6)}
        assert moved == reaches, (j, moved)
        assert torch.allclose(attn(hj)[Fr:], out[Fr:], atol=1e-6)  # ... and never the other clip
