"""The plugin against emokit's contract: one check per component, then the real protocol."""

import pytest

import emokit_opensmile
from emokit_core.testing import check_extractor, check_pipeline, check_plugin, check_recognizer
from emokit_opensmile.features import OpenSmileFunctionals


@pytest.fixture(scope="module")
def host():
    """emokit's plugin host with this plugin beside the built-ins (installed or not)."""
    return check_plugin(emokit_opensmile)


def test_plugin_registers_its_pipeline_and_extractor(host):
    assert "speech.egemaps_svc" in host.pipelines
    assert host.component("extractor", "opensmile_functionals").factory().feature_set == "eGeMAPSv02"


def test_extractor_gives_the_88_egemaps_functionals(emokit_tiny_corpus):
    features = check_extractor(OpenSmileFunctionals(), emokit_tiny_corpus.clips[:2])
    assert {f.shape for f in features} == {(88,)}


def test_extractor_refuses_an_unknown_feature_set():
    from emokit_core.errors import EmokitError
    from emokit_core.testing import synthetic_audio

    with pytest.raises(EmokitError, match="eGeMAPSv02"):
        OpenSmileFunctionals(feature_set="eGeMAPS-typo").extract_audio(synthetic_audio(), 16000, None)


def test_model_follows_the_recognizer_contract(emokit_registry):
    model = emokit_opensmile.build_egemaps_svc(C=1.0, kernel="rbf", gamma="scale").model
    check_recognizer(model, registry=emokit_registry)


def test_pipeline_runs_the_subject_wise_protocol(host, emokit_tiny_corpus, emokit_registry):
    run = check_pipeline("speech.egemaps_svc", emokit_tiny_corpus, emokit_registry, host=host)
    assert run.pooled["accuracy"] > run.zeror + 0.1  # eGeMAPS carries the demo voices' emotion cues
