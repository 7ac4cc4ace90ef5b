"""Scripts in the LocalExecutor's process pool (``local:N``): each job opens the store itself."""

from __future__ import annotations

from annoloop.execution import get_executor
from annoloop.pipeline import service
from annoloop.pipeline.engine import run_pipe
from tests.pipeline.helpers import annotate_all, write_pipeline

PID = """
    import os
    from annoloop.pipeline import Script

    class Pid(Script):
        RESOURCES = {resources}

        def main(self):
            for ds in self.inp.datasources:
                self.outp.request_annos(ds.image_ids())
            self.logger.info("pid %d", os.getpid())
"""


def test_a_pipe_runs_in_a_process_pool(project, tmp_path):
    import os

    folder = write_pipeline(
        tmp_path / "pool",
        {
            "pipe.yaml": """
                name: pool
                elements:
                  - {id: images, type: datasource}
                  - {id: one, type: script, script: one.py, inputs: [images]}
                  - {id: two, type: script, script: two.py, inputs: [images]}
                  - {id: a, type: annotask, name: A, labels: [thing], inputs: [one]}
                  - {id: b, type: annotask, name: B, labels: [thing], inputs: [two]}
            """,
            "one.py": PID.format(resources="[]"),
            "two.py": PID.format(resources='["lock_all"]'),
        },
    )
    with get_executor("local:2") as ex:
        status = service.start_pipe(project, folder / "pipe.yaml", "pp", ex, timeout=120)
        for element in ("one", "two"):
            assert status.element(element).state == "finished", status.element(element).error
        n = len(project.images())
        assert status.element("a").items["open"] == n and status.element("b").items["open"] == n
        pids = {r.message for r in service.logs(project, "pp") if r.message.startswith("pid ")}
        assert pids and f"pid {os.getpid()}" not in pids  # they ran in the pool's processes
        annotate_all(project, "pp/A", label="thing")
        annotate_all(project, "pp/B", label="thing")
        assert run_pipe(project, "pp", ex).finished
