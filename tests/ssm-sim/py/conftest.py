"""Fixtures: a simulator process (and moto's server for the cross-check)."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _start(cmd, url_from_line=None, port=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if url_from_line:
        line = proc.stdout.readline()
        match = re.search(r"http://[0-9.:]+", line)
        if not match:
            proc.kill()
            raise RuntimeError(f"unexpected first line from {cmd[0]}: {line!r}")
        return proc, match.group(0)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd[0]} did not listen on {port}")


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def sim_url():
    binary = os.environ.get("SSM_SIM_BIN")
    if not binary:
        pytest.fail("SSM_SIM_BIN is not set: run tests/ssm-sim/py/run.sh")
    proc, url = _start([binary, "--listen", "127.0.0.1:0"], url_from_line=True)
    yield url
    _stop(proc)


def control(url, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req) as resp:
        text = resp.read()
        return json.loads(text) if text.strip().startswith(b"{") else text


@pytest.fixture
def sim(sim_url):
    control(sim_url, "POST", "/_sim/reset")
    return sim_url


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url():
    port = free_port()
    proc, url = _start(["moto_server", "-H", "127.0.0.1", "-p", str(port)], port=port)
    yield url
    _stop(proc)


@pytest.fixture
def moto(moto_url):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    return moto_url


def client(url, service="ssm", key=KEY, secret=SECRET, token=None, region=REGION, validate=True):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate),
    )


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]
