"""The shared log-mel front end against librosa: both mel scales, both filter normalisations,
decibels; and the three speech front ends that use it."""

import numpy as np
import pytest

from emokit_core import melscale

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_mel_scales_match_librosa(scale):
    hz = np.array([0.0, 50.0, 440.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0, 22050.0])
    np.testing.assert_allclose(melscale.hz_to_mel(hz, scale), librosa.hz_to_mel(hz, htk=scale == "htk"), rtol=1e-12)
    mel = melscale.hz_to_mel(hz, scale)
    np.testing.assert_allclose(melscale.mel_to_hz(mel, scale), hz, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("scale, norm", [("slaney", "slaney"), ("htk", None), ("htk", "slaney"), ("slaney", None)])
@pytest.mark.parametrize("sample_rate, n_fft, n_mels, fmin, fmax", [(16000, 512, 64, 50.0, 8000.0),
                                                                    (16000, 512, 128, 0.0, 8000.0),
                                                                    (22050, 1024, 40, 20.0, None)])
def test_filterbanks_match_librosa(scale, norm, sample_rate, n_fft, n_mels, fmin, fmax):
    ours = melscale.mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, scale=scale, norm=norm)
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                 htk=scale == "htk", norm=norm, dtype=np.float64)
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_decibels_match_librosa():
    power = np.abs(np.random.default_rng(0).normal(size=(40, 100))) ** 4
    for ref, theirs_ref in ((1.0, 1.0), ("max", np.max)):
        for top_db in (None, 80.0):
            np.testing.assert_allclose(melscale.power_to_db(power, ref=ref, top_db=top_db),
                                       librosa.power_to_db(power, ref=theirs_ref, amin=1e-10, top_db=top_db),
                                       rtol=1e-10, atol=1e-9)


def test_power_spectrogram_frames_like_librosa_without_centring():
    audio = np.random.default_rng(1).normal(size=16000)
    ours = melscale.power_spectrogram(audio, 512, 256)
    theirs = np.abs(librosa.stft(audio, n_fft=512, hop_length=256, center=False, window="hann")) ** 2
    np.testing.assert_allclose(ours.T, theirs, rtol=1e-8, atol=1e-8)
    short = melscale.power_spectrogram(audio[:100], 512, 256)  # shorter than a window: one padded frame
    assert short.shape == (1, 257)
    with pytest.raises(ValueError, match="mel scale must be"):
        melscale.mel_filterbank(16000, 512, 64, scale="bark")


def test_the_speech_front_ends_read_their_filters_from_it():
    import torch

    from emokit_plugins.speech import deepspectrum
    from emokit_plugins.speech.cnn14 import Cnn14

    cnn14 = Cnn14(width=0.0625).logmel_extractor.melW.numpy()
    np.testing.assert_array_equal(cnn14.T, melscale.mel_filterbank(16000, 512, 64, 50, 8000).astype(np.float32))
    np.testing.assert_array_equal(deepspectrum.slaney_mel_filterbank(16000, 512, 128, 0.0, 8000.0),
                                  melscale.mel_filterbank(16000, 512, 128, 0.0, 8000.0))
    assert torch.is_tensor(Cnn14(width=0.0625).logmel_extractor.melW)
