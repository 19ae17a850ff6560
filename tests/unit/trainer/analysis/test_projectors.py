"""Projector sources of `pad analyze`: LLaVA's mm_projector.bin and PAD's exports load the same."""

import pytest
import torch
from helpers import ANALYZE_BASE, write_analyze_manifest
from safetensors.torch import save_file

from pad_pipeline.core.errors import PadError
from trainer.analysis.config import ProjectorSpec, load_analyze_config
from trainer.analysis.projectors import resolve_projector
from trainer.export.llava import llava_state_dict
from trainer.export.pad_format import export_projector, projector_metadata
from trainer.export.projector_source import infer_kind
from trainer.models.projectors import build_projector


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu"])
def test_llava_mm_projector_bin_and_our_exports_load_identically(tmp_path, kind):
    cfg = load_analyze_config(write_analyze_manifest(tmp_path, ANALYZE_BASE))
    torch.manual_seed(0)
    ref = build_projector(kind, 32, 64)
    state = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    bin_path = tmp_path / "mm_projector.bin"
    torch.save(llava_state_dict(state, torch.bfloat16), bin_path)
    assert infer_kind({k.split("mm_projector.")[1]: v for k, v in llava_state_dict(state).items()}) == kind
    paths = export_projector(state, str(tmp_path / "run" / "export"),
                             projector_metadata(kind, 32, 64, 256, 3, None, 64), dtype="float32")
    x = torch.randn(2, 64, 32)
    specs = {"bin": str(bin_path), "st": paths["safetensors"], "dir": str(tmp_path / "run")}
    outs = {}
    for name, source in specs.items():
        p = resolve_projector(name, ProjectorSpec(source=source), cfg, 32, 64, 64)
        outs[name] = p(x)
    with torch.no_grad():
        want = ref(x)
    torch.testing.assert_close(outs["st"], want)
    torch.testing.assert_close(outs["dir"], want)
    torch.testing.assert_close(outs["bin"], want, rtol=2e-2, atol=2e-2)  # stored in bfloat16, like LLaVA's


def test_projector_of_another_model_pair_is_refused(tmp_path):
    cfg = load_analyze_config(write_analyze_manifest(tmp_path, ANALYZE_BASE))
    torch.save(llava_state_dict(build_projector("mlp2x_gelu", 1024, 4096).state_dict()), tmp_path / "big.bin")
    with pytest.raises(PadError, match="big.bin"):
        resolve_projector("big", ProjectorSpec(source=str(tmp_path / "big.bin")), cfg, 32, 64, 64)
    save_file({"junk": torch.zeros(3)}, str(tmp_path / "junk.safetensors"))
    with pytest.raises(PadError, match="junk.safetensors"):
        resolve_projector("j", ProjectorSpec(source=str(tmp_path / "junk.safetensors")), cfg, 32, 64, 64)
    with pytest.raises(PadError, match="does not exist"):
        resolve_projector("m", ProjectorSpec(source=str(tmp_path / "missing.bin")), cfg, 32, 64, 64)
