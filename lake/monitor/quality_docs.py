"""Great Expectations Data Docs for the lake: every suite validated against its table."""

from __future__ import annotations

from pathlib import Path

from lake.errors import LakeError
from lake.lakehouse import Lake
from lake.quality.gate import quiet, quiet_progress
from lake.quality.suite import load_suites, quality_folder


def build_docs(lake: Lake, out: Path | None = None) -> str:
    """Validate each suite's table (latest version) in a file-backed GE project; build the site."""
    if out is None:
        if not lake.storage.is_local:
            raise LakeError("pass --out FOLDER: Data Docs are written to a local folder")
        out = Path(lake.storage.root) / "_quality"
    suites = load_suites(quality_folder(lake.settings.quality_dir))
    if not suites:
        raise LakeError(f"no suites in {quality_folder(lake.settings.quality_dir)}: nothing to document")
    with quiet():
        import great_expectations as gx  # heavy: Great Expectations takes seconds to import; only when a suite runs

        out.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(out))
        quiet_progress(context)
        source = context.data_sources.add_or_update_spark(name="lake")
        spark = lake.spark(app_name="lake-quality-docs")
        for table, suite in sorted(suites.items()):
            t = lake.table(table)
            if not t.exists():
                continue
            name = table.replace(".", "_")
            try:
                asset = source.get_asset(name)
            except LookupError:
                asset = source.add_dataframe_asset(name=name)
            try:
                batch_def = asset.get_batch_definition("whole")
            except (KeyError, LookupError):
                batch_def = asset.add_batch_definition_whole_dataframe("whole")
            gx_suite = context.suites.add_or_update(suite.to_gx())
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=f"{name}_validation", data=batch_def, suite=gx_suite))
            checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
                name=f"{name}_checkpoint", validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")]))
            checkpoint.run(batch_parameters={"dataframe": t.to_spark(spark)})
        context.build_data_docs()
        urls = [site["site_url"] for site in context.get_docs_sites_urls()]
    if not urls:
        raise LakeError("Great Expectations built no Data Docs site")
    return str(urls[0])
