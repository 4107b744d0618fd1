"""The pure pieces of shipping: remote URLs, workflow inputs, the token's git variables, progress lines."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from patcher.credentials import git_environment, read_token
from patcher.dispatch_inputs import DispatchInput
from patcher.errors import InputError
from patcher.github_step import api_url_for_host, repository_from_remote_url, resolve_repository
from patcher.run_watch import progress_line
from patcher.ship_inputs import checked_inputs, parse_input_arguments

DECLARED = {
    "model_type": DispatchInput(type="choice", options=("NanEcho", "RAT"), default="NanEcho"),
    "data_dir": DispatchInput(type="string", default="data/sample"),
    "force_fresh_start": DispatchInput(type="boolean", default=False),
    "max_iters": DispatchInput(type="number", default=800),
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/9cog/echoself.git", ("github.com", "9cog/echoself")),
        ("https://github.com/9cog/echoself", ("github.com", "9cog/echoself")),
        ("https://user@github.com/9cog/echoself/", ("github.com", "9cog/echoself")),
        ("ssh://git@github.com/9cog/echoself.git", ("github.com", "9cog/echoself")),
        ("ssh://git@ghe.example.com:2222/team/echoself.git", ("ghe.example.com", "team/echoself")),
        ("git@github.com:9cog/echoself.git", ("github.com", "9cog/echoself")),
        ("ghe.example.com:team/echo.self", ("ghe.example.com", "team/echo.self")),
    ],
)
def test_remote_url_forms_give_owner_and_name(url, expected):
    assert repository_from_remote_url(url) == expected


@pytest.mark.parametrize("url", ["/srv/git/echoself.git", "file:///srv/git/echoself.git", "https://github.com/echoself"])
def test_remote_url_without_owner_and_name_gives_none(url):
    assert repository_from_remote_url(url) is None


def test_path_remote_without_repo_option_rejected():
    with pytest.raises(InputError, match="pass --repo OWNER/NAME"):
        resolve_repository(None, "/srv/git/echoself.git", "origin")


def test_repo_option_checked_for_owner_and_name():
    with pytest.raises(InputError, match="invalid repository 'echoself': expected OWNER/NAME"):
        resolve_repository("echoself", "git@github.com:9cog/echoself.git", "origin")


def test_enterprise_host_gets_api_v3_url():
    assert api_url_for_host("ghe.example.com") == "https://ghe.example.com/api/v3"


def test_model_type_rat_added_unless_given():
    assert parse_input_arguments([]) == {"model_type": "RAT"}
    assert parse_input_arguments(["model_type=NanEcho", "data_dir=a=b"]) == {"model_type": "NanEcho", "data_dir": "a=b"}


def test_input_without_equals_sign_rejected():
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        parse_input_arguments(["model_type"])


def test_boolean_input_sent_in_lower_case():
    assert checked_inputs({"force_fresh_start": "True"}, DECLARED, "wf.yml") == {"force_fresh_start": "true"}


def test_boolean_input_other_value_rejected():
    with pytest.raises(InputError, match="for boolean input force_fresh_start: expected true or false"):
        checked_inputs({"force_fresh_start": "yes"}, DECLARED, "wf.yml")


def test_number_input_other_value_rejected():
    with pytest.raises(InputError, match="for number input max_iters: expected a number"):
        checked_inputs({"max_iters": "many"}, DECLARED, "wf.yml")


def test_required_input_without_default_rejected():
    declared = {**DECLARED, "run_name": DispatchInput(required=True)}

    with pytest.raises(InputError, match="input run_name is required and has no default"):
        checked_inputs({"model_type": "RAT"}, declared, "wf.yml")


def test_github_token_read_before_gh_token():
    assert read_token({"GITHUB_TOKEN": "first", "GH_TOKEN": "second"}) == "first"
    assert read_token({"GITHUB_TOKEN": " ", "GH_TOKEN": "second"}) == "second"


def test_token_header_scoped_to_https_remote_host():
    variables = git_environment("https://github.com/9cog/echoself.git", "secret-value", environment={})

    assert variables["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
    encoded = variables["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(encoded).decode() == "x-access-token:secret-value"


def test_token_header_appended_after_existing_config_variables():
    variables = git_environment("https://github.com/9cog/echoself.git", "secret-value", {"GIT_CONFIG_COUNT": "2"})

    assert variables["GIT_CONFIG_COUNT"] == "3"
    assert "GIT_CONFIG_KEY_2" in variables


def test_ssh_remote_gets_no_token():
    variables = git_environment("git@github.com:9cog/echoself.git", "secret-value", environment={})

    assert variables == {"GIT_TERMINAL_PROMPT": "0"}


def test_progress_line_lists_unfinished_and_failed_jobs():
    jobs = [
        SimpleNamespace(name="prepare", status="completed", conclusion="success"),
        SimpleNamespace(name="lint", status="completed", conclusion="failure"),
        SimpleNamespace(name="train", status="in_progress", conclusion=None),
    ]

    assert progress_line("in_progress", None, jobs) == "in_progress; jobs 2/3 done (train: in_progress, lint: failure)"
