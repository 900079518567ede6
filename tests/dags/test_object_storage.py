"""The DAG's person partitions as mapped tasks sharing an S3 work store (moto's S3 server on 127.0.0.1).

Celery workers on different hosts share nothing but the warehouse and the work store, so the test runs the DAG
with its work store in a bucket, three partitions mapped over, and checks that the partitions' files went
through S3, that the run removed them, and that the night's extracts and tables equal a one-partition CLI run.
"""

import pytest
from subsidy_ledger import pipeline, warehouse

from tests.conftest import S3_BUCKET as BUCKET
from tests.dags.conftest import REPO, run_airflow_script
from tests.dags.test_dag_run import SCRIPT
from tests.test_partition import _digest, _tables


@pytest.mark.airflow
def test_mapped_partitions_share_an_s3_work_store_and_answer_as_one_partition(airflow_home, small_drop, tmp_path,
                                                                              s3, monkeypatch):
    monkeypatch.setenv("SUBSIDY_LEDGER_PARTITIONS", "3")
    monkeypatch.setenv(warehouse.PERSON_CODE_KEY_ENV, "object-storage-test-key")  # comparable extracts
    out, wh = tmp_path / "dag", f"sqlite:///{tmp_path / 'dag.sqlite'}"
    result = run_airflow_script(airflow_home, SCRIPT, str(small_drop), str(out), wh, str(REPO / "dags"))
    assert result["state"] == "success", result["_log"][-3000:]
    log = result["_log"]
    assert "eligibility (as of 2022-06-30): 3 person partitions:" in log
    assert "person partition 2 done" in log  # the mapped instances ran

    versions = s3.list_object_versions(Bucket=BUCKET)
    written = {v["Key"] for v in versions.get("Versions", [])}
    for step in ("eligibility", "decide"):
        for i in range(3):
            assert any(k.startswith("work/") and f"/{step}/p{i}/" in k for k in written), (step, i)
    assert any(k.endswith("/accepted/certificates.parquet") for k in written)
    assert not s3.list_objects_v2(Bucket=BUCKET).get("Contents"), "the run leaves no work (full identity numbers)"

    # the same night from the CLI with one partition and a local work folder: the same extracts and tables
    monkeypatch.setenv(pipeline.WORK_ENV, str(tmp_path / "work"))
    monkeypatch.delenv(pipeline.WORK_CONN_ENV)
    cli_out, cli_wh = tmp_path / "cli", f"sqlite:///{tmp_path / 'cli.sqlite'}"
    pipeline.run(pipeline.RunConfig(sources=str(small_drop), as_of="2022-06-30", warehouse=cli_wh, out=str(cli_out),
                                    run_id=result["run_id"], partitions=1))
    assert _digest(out / "2022-06-30") == _digest(cli_out / "2022-06-30")
    assert _tables(wh) == _tables(cli_wh)
