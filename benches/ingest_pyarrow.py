"""What a data engineer would write instead of `hrloop ingest`: read the HRIS CSV with
pyarrow (multi-threaded) and write it as zstd Parquet, partitioned like hrloop's lake.
No validation, no pseudonymisation, no quarantine, no deduplication.

usage: ingest_pyarrow.py CSV OUT_DIR [polars]"""
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

src, out = sys.argv[1], sys.argv[2]
engine = sys.argv[3] if len(sys.argv) > 3 else "pyarrow"
if engine == "polars":
    import polars as pl

    df = pl.read_csv(src, separator=";", try_parse_dates=False)
    df = df.with_columns(pl.col("Milestone date").str.slice(0, 7).alias("month"))
    df.write_parquet(out, compression="zstd", partition_by=["month"])
else:
    table = pacsv.read_csv(src, parse_options=pacsv.ParseOptions(delimiter=";"))
    month = pa.compute.utf8_slice_codeunits(table.column("Milestone date").cast(pa.string()), 0, 7)
    table = table.append_column("month", month)
    ds.write_dataset(
        table,
        out,
        format="parquet",
        partitioning=["month"],
        partitioning_flavor="hive",
        file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
        existing_data_behavior="overwrite_or_ignore",
    )
