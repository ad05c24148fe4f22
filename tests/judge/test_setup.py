"""The judge's URL pre-flight as the run calls it: a juror whose URL does not answer is named before anything loads."""

from __future__ import annotations

import pytest

from evalsvc.errors import UserError
from evalsvc.judge.setup import check_judge_urls
from evalsvc.manifest.judging import Judge
from tests.engines.test_probe import dead_port, server  # noqa: F401  (the live server fixture)


def test_a_dead_juror_url_is_named_with_the_ready_hint(server):  # noqa: F811
    live = f"http://127.0.0.1:{server.server_port}/v1"
    dead = f"http://127.0.0.1:{dead_port()}/v1"
    jury = Judge(members=[{"name": "a", "url": live, "model_name": "m"}, {"name": "b", "url": dead, "model_name": "m"}])
    with pytest.raises(UserError, match=r"^judge\.members\.1\.url: .* does not answer .*get rayservice evalsvc-judge"):
        check_judge_urls(jury)
    check_judge_urls(Judge(url=live, model_name="m"))  # one live judge passes
    check_judge_urls(Judge(model={"source": "org/judge"}))  # a served judge has no URL to check
