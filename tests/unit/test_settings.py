"""Settings conversion: camelCase keys, defaults for bad values, messages for mistakes."""

from lsp_server.settings import Settings, language_enabled, parse_settings


def test_defaults():
    s = Settings()
    assert s.model == "deepseek-coder-1.3b-base"
    assert s.temperature == 0.0 and s.n_gpu_layers == 0


def test_camel_case_and_section_key():
    parsed = parse_settings({"coderLsp": {"model": "/m.gguf", "nCtx": 2048, "nGpuLayers": -1}})
    assert parsed.errors == ()
    assert parsed.settings.model == "/m.gguf"
    assert parsed.settings.n_ctx == 2048 and parsed.settings.n_gpu_layers == -1


def test_invalid_values_keep_defaults_and_report_each():
    parsed = parse_settings(
        {"nCtx": -5, "temperature": "hot", "maxTokens": True, "bogus": 1, "logLevel": "loud"}
    )
    s = parsed.settings
    assert (s.n_ctx, s.temperature, s.max_tokens, s.log_level) == (4096, 0.0, 128, "info")
    assert len(parsed.errors) == 5
    assert any("bogus" in e for e in parsed.errors)
    assert any("nCtx" in e and "positive integer" in e for e in parsed.errors)


def test_non_object_settings_are_reported():
    parsed = parse_settings(["model"])
    assert parsed.settings == Settings() and "must be an object" in parsed.errors[0]
    assert parse_settings(None).settings == Settings()


def test_base_settings_are_kept_for_unset_keys():
    base = parse_settings({"model": "a.gguf", "maxTokens": 64}).settings
    s = parse_settings({"maxTokens": 32}, base).settings
    assert s.model == "a.gguf" and s.max_tokens == 32


def test_language_filters():
    s = parse_settings({"languages": ["python", "go"], "disabledLanguages": ["go"]}).settings
    assert language_enabled(s, "python")
    assert not language_enabled(s, "go") and not language_enabled(s, "rust")
    assert not language_enabled(parse_settings({"enable": False}).settings, "python")
