"""Every model runs on every feature shape; the architectures are the ones the journal names."""

from __future__ import annotations

import pytest
import torch
from helpers import NARROW, generic_options, option_config
from hydra.utils import instantiate

from mgc.models import CNN, MLP, Recurrent, ResNet18, ShortChunkCNN
from mgc.models.blocks import GlobalPool

SHAPES = {"mfcc-json": (1, 13, 130), "mfcc-png": (3, 13, 1249), "mfcc-png-70": (3, 70, 70), "chroma": (1, 12, 431)}
#: Every option of conf/model as its yaml builds it (a model added later is tested here too).
MODELS = generic_options("model")


@pytest.mark.parametrize("feature", SHAPES)
@pytest.mark.parametrize("name", MODELS)
def test_every_model_on_every_feature(name, feature):
    config = option_config("model", name, *NARROW.get(name, []))  # narrower layers: the same code paths, faster
    model = instantiate(config, input_shape=SHAPES[feature], num_classes=10)
    logits = model(torch.randn(3, *SHAPES[feature]))
    # the model contract: (batch, classes); an ensemble in training gives each member's, (members, batch, classes)
    assert logits.shape[-2:] == (3, 10) and logits.ndim == 2 + (len(getattr(model, "members", [])) > 0)
    assert model.eval()(torch.randn(3, *SHAPES[feature])).shape == (3, 10)
    model.train()
    logits.sum().backward()  # gradients reach the first layer
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_resnet18_is_the_standard_architecture():
    # torchvision.models.resnet18(num_classes=10) has exactly this many parameters.
    assert sum(p.numel() for p in ResNet18((3, 224, 224), 10).parameters()) == 11_181_642
    assert ResNet18((1, 13, 130), 10).features[0].in_channels == 1


def test_mlp_layout_matches_the_journal():
    mlp = MLP((1, 13, 130), 10)
    linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1690, 256), (256, 128), (128, 10)]
    assert not isinstance(mlp[1], torch.nn.ReLU)  # no ReLU on the raw input
    assert not any(isinstance(m, torch.nn.Softmax) for m in mlp)


def test_bidirectional_doubles_the_head_input():
    uni, bi = Recurrent((1, 13, 130), 10), Recurrent((1, 13, 130), 10, bidirectional=True)
    assert bi.head[0].in_features == 2 * uni.head[0].in_features == 512


def test_recurrent_reads_frames_as_time_steps():
    model = Recurrent((2, 13, 50), 10, hidden_size=8, num_layers=1)
    assert model.rnn.input_size == 26  # channels * bins values per frame
    x = torch.randn(1, 2, 13, 50)
    y = x.clone()
    y[..., 0] += 1.0  # changing only the first frame changes the output: it saw the whole sequence
    assert not torch.allclose(model(x), model(y))


def test_cnn_channels_as_in_the_journal():
    convs = [m.out_channels for m in CNN((1, 13, 130), 10) if isinstance(m, torch.nn.Conv2d)]
    assert convs == [256, 256, 256, 512]


def convolutions(model: torch.nn.Module) -> list[torch.nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (lambda layout: CNN((2, 13, 130), 10, channels=(8, 8, 16, 16), fc=(16,), channels_last=layout), (2, 13, 130)),
        (lambda layout: ShortChunkCNN((2, 32, 40), 10, channels=(8, 16, 16), channels_last=layout), (2, 32, 40)),
    ],
    ids=["cnn", "short_chunk_cnn"],
)
def test_channels_last_convolves_in_nhwc_and_computes_the_same_numbers(build, shape):
    torch.manual_seed(0)
    nhwc, nchw = build(True), build(False)
    nchw.load_state_dict(nhwc.state_dict())
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convolutions(nhwc))
    seen = []  # what the first convolution is given: an NHWC batch (2 channels), whatever the caller passes
    convolutions(nhwc)[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x = torch.randn(4, *shape)
    torch.manual_seed(1)  # the same dropout draws for both
    out = nhwc(x)
    torch.manual_seed(1)
    expected = nchw(x)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert not seen[0].is_contiguous()  # a real NHWC layout, not a tensor that is both
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(
        convolutions(nhwc)[0].weight.grad, convolutions(nchw)[0].weight.grad, rtol=1e-3, atol=1e-5
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "reduce, adaptive", [("max", torch.nn.AdaptiveMaxPool2d(1)), ("mean", torch.nn.AdaptiveAvgPool2d(1))]
)
def test_global_pool_gives_the_adaptive_pools_numbers_to_the_bit(reduce, adaptive, dtype):
    """The reductions that replace them (deterministic on CUDA) change nothing on CPU: outputs, gradients, ties."""
    torch.manual_seed(0)
    x = torch.relu(torch.randn(16, 32, 3, 41)).to(dtype)  # post-ReLU maps: zeros and, in bfloat16, tied maxima
    x[0, 0] = 1.0  # a map that is one tie
    weights = torch.randn(16, 32).to(dtype)
    grads = []
    for pool in (GlobalPool(reduce), lambda t: adaptive(t).flatten(1)):
        leaf = x.clone().requires_grad_()
        y = pool(leaf)
        (y * weights).sum().backward()
        grads.append((y.detach(), leaf.grad))
    (y_new, g_new), (y_old, g_old) = grads
    assert y_new.shape == (16, 32)
    assert torch.equal(y_new, y_old) and torch.equal(g_new, g_old)
    assert g_new[0, 0].count_nonzero() == (1 if reduce == "max" else 3 * 41)
