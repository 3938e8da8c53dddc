"""RepVGG's two forms: the training form counts timm's repvgg_a0 exactly, and folding a
trained network gives the deploy-form network of the same spec, computing the same outputs."""

from __future__ import annotations

import torch
import yaml

from archsearch import build, zoo
from archsearch.blocks.layers import RepVGGBlock, reparameterize
from archsearch.cost import count
from archsearch.cost.reference import measure_arch
from archsearch.spec import Architecture


def _form(arch: Architecture, form: str) -> Architecture:
    data = yaml.safe_load(arch.to_yaml())
    blocks = [data["stem"], *(b for s in data["stages"] for b in s["blocks"])]
    for block in blocks:
        if block["type"] == "repvgg":
            block["params"]["form"] = form
    return Architecture.from_dict(data)


def test_training_form_of_repvgg_a0_is_exact() -> None:
    train = _form(zoo.get("repvgg_a0"), "train")
    assert count(train).params == 9_108_968  # timm repvgg_a0, before reparameterize_model
    assert count(train) == measure_arch(train)


def test_folding_gives_the_deploy_network_with_the_same_outputs() -> None:
    small = zoo.get("repvgg_a0").with_input((3, 32, 32), 10)
    train, deploy = _form(small, "train"), _form(small, "deploy")
    torch.manual_seed(0)
    net = build(train)
    for m in net.modules():  # non-trivial BN statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = net(x)
        folded = reparameterize(net)
        assert not any(m.dense is not None for m in folded.modules() if isinstance(m, RepVGGBlock))
        target = build(deploy).eval()
        target.load_state_dict(folded.state_dict(), strict=True)
        got = target(x)
    assert sum(p.numel() for p in target.parameters()) == count(deploy).params
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
