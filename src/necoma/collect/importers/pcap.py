"""`necoma import pcap`: pcap/pcapng captures into `packets`, `dns` and `flows`.

The file is streamed in chunks (`CaptureReader`), each chunk's frames decoded at
once (`decode_frames`) and written; flows are cut across chunks by
`FlowAggregator` with exporter-like idle/active timeouts. The exporter column is
the file name. A damaged file keeps everything before the damage; the returned
notes say where reading stopped.
"""
from __future__ import annotations

import queue
import threading
from collections import Counter
from pathlib import Path

from necoma.collect._jit import COMPILE_FROM_BYTES, load
from necoma.collect.capture_file import CaptureReader, NotACapture
from necoma.collect.flowagg import FlowAggregator
from necoma.collect.packet import decode_frames
from necoma.collect.rejects import Rejects
from necoma.lake.writer import LakeWriter

CHUNK_BYTES = 4 << 20  # bounded memory; arrays of a 4 MB chunk stay in cache and need no fresh pages


def import_file(path: Path, writer: LakeWriter, rejects: Rejects, *, chunk_bytes: int = CHUNK_BYTES,
                idle_timeout: float = 60.0, active_timeout: float = 300.0, **_options) -> list[str]:
    from necoma.collect.importing import ImportFailed  # importing imports the registry; avoid a cycle

    path = Path(path)
    try:
        reader = CaptureReader(path, chunk_bytes=chunk_bytes)
    except NotACapture as exc:
        raise ImportFailed(str(exc)) from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc}") from None
    if path.stat().st_size >= COMPILE_FROM_BYTES:
        load()  # numba's ~0.6 s pays off from here on; smaller files are decoded with numpy
    flows = FlowAggregator(path.name, idle_s=idle_timeout, active_s=active_timeout)
    skipped: Counter = Counter()
    # Two threads beside this one (numba kernels, numpy and Parquet release the GIL):
    # one writes `packets` and `dns`, the other cuts flows and writes `flows`, while
    # the next chunk is decoded here. Each table is written by one thread only
    # (LakeWriter keeps its state per table); the queues are short, so at most a
    # couple of decoded chunks wait in memory.
    with _Background("pcap-import-tables") as tables, _Background("pcap-import-flows") as flow_bg, reader:
        for b in reader.batches():
            dec = decode_frames(b.buf, b.offsets, b.caplens, b.wirelens, b.times_us, b.linktypes,
                                exporter=path.name, frame_base=b.first_frame)
            rejects.merge(dec.rejects)
            # In a file, a DNS message cut by the snap length is still reported (the capture
            # lost data the user may want); what decoded is kept either way.
            for reason, n in dec.truncated.by_reason.items():
                rejects.add(f"{reason} (frame cut by the snap length)", dec.truncated.first_seen[reason], n)
            skipped.update(dec.skipped)
            tables.put(_store_tables, writer, dec)
            flow_bg.put(_store_flows, writer, flows, dec)
        flow_bg.put(_finish_flows, writer, flows)
        tables.put(_flush, writer, ("packets", "dns"))  # the last rows too are encoded beside each other
    notes = [f"{reader.format}, {reader.frames} frames read"]
    if skipped:
        kinds = ", ".join(f"{n} × {k}" for k, n in skipped.most_common(5))
        notes.append(f"{sum(skipped.values())} non-IP frames not stored ({kinds})")
    if reader.stopped:
        notes.append(f"stopped early: {reader.stopped}; everything before was imported")
    return notes


def _store_tables(writer: LakeWriter, dec) -> None:
    writer.write("packets", dec.packets)
    writer.write("dns", dec.dns)


def _store_flows(writer: LakeWriter, flows: FlowAggregator, dec) -> None:
    writer.write("flows", flows.add(dec.packets, dec.tos, dec.addr_keys))


def _finish_flows(writer: LakeWriter, flows: FlowAggregator) -> None:
    writer.write("flows", flows.finish())
    writer.flush("flows")


def _flush(writer: LakeWriter, tables: tuple[str, ...]) -> None:
    for table in tables:
        writer.flush(table)


class _Background:
    """One worker thread running queued calls in order; its first error is re-raised
    on the importing thread (at the next `put` or at exit)."""

    def __init__(self, name: str) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    item[0](*item[1:])
                except BaseException as exc:  # noqa: BLE001 - re-raised on the importing thread
                    self.error = exc

    def put(self, func, *args) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((func, *args))

    def __enter__(self) -> "_Background":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error
