"""The lake: Parquet files partitioned by table and time, and the engines that read them."""
from necoma.lake.writer import LakeWriter
from necoma.lake.catalog import connect, table_files

__all__ = ["LakeWriter", "connect", "table_files"]
