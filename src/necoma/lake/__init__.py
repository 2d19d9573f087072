"""The lake: Parquet files partitioned by table and time, and the engines that read them."""
from necoma.lake.catalog import connect, table_files

__all__ = ["LakeWriter", "connect", "table_files"]


def __getattr__(name: str):
    # The writer (pyarrow.parquet, ~0.1 s to import) is loaded when first asked for: reading the lake,
    # as `necoma analyze` and the engines do, never needs it.
    if name == "LakeWriter":
        from necoma.lake.writer import LakeWriter

        return LakeWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
