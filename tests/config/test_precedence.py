"""DESIGN section 2: flag > env > .env > config-file profile > default, checked on the request
pytest-httpx caught (SID in the path, the api-key header, the base URL), like llm's
test_uses_correct_key. One parametrized table; each row sets every level up to its top one.
"""

from __future__ import annotations


import pytest

from tests.conftest import MESSAGE_ID, TO

PODS = {"in": "https://api.in.kaleyra.io", "sg": "https://api.ap.kaleyra.io", "eu": "https://api.eu.kaleyra.io"}

# One distinct value per level (a SID is letters and digits; numbers are valid Indian mobiles).
VALUES = {
    "profile": {"sid": "PROFILESID1", "api_key": "ProfileKey00000000000001", "wa_number": "+919000000001"},
    "dotenv": {"sid": "DOTENVSID2", "api_key": "DotenvKey000000000000002", "wa_number": "+919000000002"},
    "env": {"sid": "ENVSID3", "api_key": "EnvKey000000000000000003", "wa_number": "+919000000003"},
    "flag": {"sid": "FLAGSID4", "api_key": "FlagKey00000000000000004", "wa_number": "+919000000004"},
}
ENV_NAMES = {"sid": "KALEYRA_SID", "api_key": "KALEYRA_API_KEY", "wa_number": "KALEYRA_WA_NUMBER", "pod": "KALEYRA_POD", "base_url": "KALEYRA_BASE_URL"}
FLAG_NAMES = {"sid": "--sid", "wa_number": "--from", "pod": "--pod", "base_url": "--base-url"}

# (id, {level: {setting: value}} added on top of the profile's credentials, expected winner level, expected base URL)
ROWS = [
    # Credentials: each level beats every level below it.
    ("profile", {}, "profile", PODS["in"]),
    ("dotenv>profile", {"dotenv": VALUES["dotenv"]}, "dotenv", PODS["in"]),
    ("env>dotenv>profile", {"dotenv": VALUES["dotenv"], "env": VALUES["env"]}, "env", PODS["in"]),
    ("flag>env>dotenv>profile", {"dotenv": VALUES["dotenv"], "env": VALUES["env"], "flag": VALUES["flag"]}, "flag", PODS["in"]),
    # Endpoint: the highest level setting pod or base_url decides; within one level base_url wins.
    ("default pod", {}, "profile", PODS["in"]),
    ("profile pod", {"profile": {"pod": "sg"}}, "profile", PODS["sg"]),
    ("profile base_url beats profile pod", {"profile": {"pod": "sg", "base_url": "https://proxy.example/kaleyra"}}, "profile", "https://proxy.example/kaleyra"),
    ("dotenv pod beats profile base_url", {"profile": {"base_url": "https://proxy.example"}, "dotenv": {"pod": "eu"}}, "profile", PODS["eu"]),
    ("env base_url beats dotenv pod", {"dotenv": {"pod": "eu"}, "env": {"base_url": "https://env.example"}}, "profile", "https://env.example"),
    ("env pod beats dotenv base_url", {"dotenv": {"base_url": "https://dotenv.example"}, "env": {"pod": "sg"}}, "profile", PODS["sg"]),
    ("flag pod beats env base_url", {"env": {"base_url": "https://env.example"}, "flag": {"pod": "eu"}}, "profile", PODS["eu"]),
    ("flag base_url beats flag pod", {"env": {"pod": "sg"}, "flag": {"pod": "eu", "base_url": "https://flag.example/"}}, "profile", "https://flag.example"),
]


def _toml(values: dict[str, str]) -> str:
    return "".join(f'{key} = "{value}"\n' for key, value in values.items())


@pytest.mark.parametrize(("levels", "winner", "base"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_precedence_table(kwa, httpx_mock, monkeypatch, write_config, isolated_env, tmp_path, levels, winner, base):
    profile = {**VALUES["profile"], **levels.get("profile", {})}
    write_config("[profiles.default]\n" + _toml(profile))
    if "dotenv" in levels:
        dotenv = isolated_env / ".env"
        dotenv.write_text("".join(f"{ENV_NAMES[k]}={v}\n" for k, v in levels["dotenv"].items()))
        dotenv.chmod(0o600)
    for key, value in levels.get("env", {}).items():
        monkeypatch.setenv(ENV_NAMES[key], value)
    args = ["reply", "--to", TO, "hi"]
    for key, value in levels.get("flag", {}).items():
        if key == "api_key":  # the key's flag level is a file, never a value
            key_file = tmp_path / "key.txt"
            key_file.write_text(value + "\n")
            key_file.chmod(0o600)
            args += ["--api-key-file", str(key_file)]
        else:
            args += [FLAG_NAMES[key], value]
    httpx_mock.add_response(method="POST", status_code=202, json={"code": "WA202", "data": {"message_id": MESSAGE_ID}})

    result = kwa(*args)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == MESSAGE_ID
    (request,) = httpx_mock.get_requests()
    expected = VALUES[winner]
    assert str(request.url) == f"{base}/v2/{expected['sid']}/whatsapp/{expected['wa_number']}/messages"
    assert request.headers["api-key"] == expected["api_key"]


@pytest.mark.parametrize("how", ["flag", "env", "dotenv", "default_profile"])
@pytest.mark.parametrize("command", ["reply", "validate"])
def test_profile_selects_the_profile_for_reply_and_validate(kwa, httpx_mock, monkeypatch, write_config, isolated_env, how, command):
    write_config(
        ("default_profile = \"staging\"\n" if how == "default_profile" else "")
        + '[profiles.default]\nsid = "DEFAULTSID"\napi_key = "DefaultKey00000000000000"\nwa_number = "+919000000001"\n'
        + '[profiles.staging]\nsid = "STAGINGSID"\napi_key = "StagingKey00000000000000"\nwa_number = "+919000000002"\npod = "sg"\n'
    )
    args = [command, "--to", TO, "hi", "--json"]
    if how == "flag":
        args += ["--profile", "staging"]
    elif how == "env":
        monkeypatch.setenv("KWA_PROFILE", "staging")
    elif how == "dotenv":
        (isolated_env / ".env").write_text("KWA_PROFILE=staging\n")
    if command == "reply":
        httpx_mock.add_response(method="POST", status_code=202, json={"code": "WA202", "data": {"message_id": MESSAGE_ID}})

    result = kwa(*args)

    assert result.exit_code == 0, result.output
    if command == "reply":
        (request,) = httpx_mock.get_requests()
        assert str(request.url) == f"{PODS['sg']}/v2/STAGINGSID/whatsapp/+919000000002/messages"
        assert request.headers["api-key"] == "StagingKey00000000000000"
    else:
        assert result.json()["ok"] is True


@pytest.mark.parametrize("command", ["reply", "validate"])
def test_unknown_profile_is_exit_2_listing_profiles(kwa, write_config, command):
    write_config('[profiles.prod]\nsid = "A1"\n[profiles.test]\nsid = "B2"\n')
    result = kwa(command, "--to", TO, "hi", "--profile", "staging")
    assert result.exit_code == 2, result.output
    assert "staging" in result.stderr
    assert "prod, test" in result.stderr


def test_kwa_config_in_dotenv_moves_the_config_file(kwa, httpx_mock, write_config, isolated_env, tmp_path, monkeypatch):
    monkeypatch.delenv("KWA_CONFIG")
    other = write_config('[profiles.default]\nsid = "DOTENVCFG"\napi_key = "DotenvCfgKey000000000000"\nwa_number = "+919000000005"\n', tmp_path / "elsewhere.toml")
    (isolated_env / ".env").write_text(f"KWA_CONFIG={other}\n")
    httpx_mock.add_response(method="POST", status_code=202, json={"code": "WA202", "data": {"message_id": MESSAGE_ID}})
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    (request,) = httpx_mock.get_requests()
    assert "/v2/DOTENVCFG/" in str(request.url)


def test_empty_variable_counts_as_unset(kwa, httpx_mock, write_config, monkeypatch):
    write_config('[profiles.default]\n' + _toml(VALUES["profile"]))
    monkeypatch.setenv("KALEYRA_SID", "")
    httpx_mock.add_response(method="POST", status_code=202, json={"code": "WA202", "data": {"message_id": MESSAGE_ID}})
    result = kwa("reply", "--to", TO, "hi")
    assert result.exit_code == 0, result.output
    assert "/v2/PROFILESID1/" in str(httpx_mock.get_requests()[0].url)
