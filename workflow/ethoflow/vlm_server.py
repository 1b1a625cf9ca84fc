"""One loaded VLM per allocation: a model server that a node's VLM jobs share.

Snakemake runs every job in a process of its own (on SLURM, one ``srun`` step per job of a
group job), so a model loaded by a job dies with it: ``vlm_embed``, ``vlm_describe`` and
``vlm_icl`` of a session would each load the model and each run the vision tower over the
same clips. Here the first VLM job of an allocation (``SLURM_JOB_ID``; a local run counts as
one) starts a server process that loads the model once; every VLM job of that allocation,
with the same model settings, sends its task (which file, which prompt) to it over a Unix
socket, gets the numbers back and writes its own outputs. The server keeps each clip's
vision encoding (``vision_cache``), so embed, describe and ICL of a clip run the tower once,
and exits after ``idle_s`` seconds without a request.

The jobs and their outputs stay what they were, so what reruns when does not change: a
changed embedding prompt reruns ``vlm_embed`` and what depends on it, not descriptions or
ICL, and an added session runs that session's VLM jobs only. The server only decides where
the work is done. Jobs are served one at a time (one model, one GPU); a job killed while it
waits leaves the server running for the rerun; a server that dies is started again once.

``LocalVLM`` runs the same tasks in the job's own process (``vlm_server.enabled: false``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Client, Listener
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)

AUTH = b"ethoflow-vlm-server"  # the socket's folder is the user's own (mode 0700)
LOAD_KEYS = ("model", "revision", "dtype", "attn", "gpu_preprocess")  # what a server loads
_SOURCES = ("vlm.py", "vlm_server.py", "vision_cache.py", "fast_vision.py")


# ---------------------------------------------------------------------- the tasks
def _read_clips(vlm, clips: str) -> tuple[dict, list]:
    """A clips h5 (``results.read_clips``) and its clips' vision-cache keys; the model takes
    the clips' frame rate (Qwen2.5-VL's time positions)."""
    from .results import read_clips
    from .vision_cache import clip_keys

    data = read_clips(clips)
    vlm.video_fps = float(data.get("fps_out", 2.0))
    return data, clip_keys(clips, len(data["frames"]))


def embed(vlm, clips: str, prompt: str, pooling: str, layer: int, batch_size: int) -> dict:
    """Pooled embeddings of every clip of a clips h5, with the clips' windows."""
    data, keys = _read_clips(vlm, clips)
    t0 = time.perf_counter()
    emb = vlm.embed(data["frames"], prompt, pooling, layer, batch_size, keys=keys)
    return {
        "embeddings": emb,
        "start_frame": data["start_frame"],
        "end_frame": data["end_frame"],
        "seconds": time.perf_counter() - t0,
    }


def describe(vlm, clips: str, prompt: str, max_new_tokens: int, batch_size: int) -> dict:
    """The greedy answer for every clip of a clips h5."""
    data, keys = _read_clips(vlm, clips)
    answers = vlm.describe(data["frames"], prompt, max_new_tokens, batch_size, keys=keys)
    return {"answers": answers, "start_frame": data["start_frame"], "end_frame": data["end_frame"]}


def score(
    vlm, clips: str, exemplars: str, prompt: str, candidates: list[str], batch_size: int
) -> dict:
    """In-context label scores of every clip of a clips h5 after the exemplars."""
    from .results import read_icl_exemplars
    from .vision_cache import clip_keys

    data, keys = _read_clips(vlm, clips)
    ex_frames, ex_labels = read_icl_exemplars(exemplars)
    t0 = time.perf_counter()
    s = vlm.score_labels(
        data["frames"],
        prompt,
        candidates,
        exemplars=list(zip(ex_frames, ex_labels, strict=True)),
        batch_size=batch_size,
        keys=keys,
        exemplar_keys=clip_keys(exemplars, len(ex_labels)),
    )
    return {"scores": s, "n_exemplars": len(ex_labels), "seconds": time.perf_counter() - t0}


TASKS = {"embed": embed, "describe": describe, "score": score}

#: seconds between the server's checks that its SLURM job still runs
ALLOCATION_CHECK_S = float(os.environ.get("ETHOFLOW_VLM_ALLOCATION_CHECK_S", 10))
_ALIVE = {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "RESIZING", "STAGE_OUT"}


def allocation_alive() -> bool:
    """False once the SLURM job the server belongs to has ended (a server started in one of
    its steps may outlive the step where SLURM tracks processes by parent, and must not keep
    the GPU after the allocation); True outside SLURM and whenever squeue cannot tell."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return True
    try:
        r = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return True
    if r.returncode != 0:  # an unknown job id (gone from squeue) is an error too
        return "Invalid job id" not in r.stderr
    state = r.stdout.split()
    return bool(state) and state[0] in _ALIVE  # gone from the queue, ended, or requeued


def _load(settings: dict, threads: int):
    import torch

    from .vlm import load_vlm

    torch.set_num_threads(max(1, int(threads)))
    return load_vlm(
        settings["model"],
        revision=settings.get("revision") or None,
        dtype=settings.get("dtype", "auto"),
        attn=settings.get("attn", "sdpa"),
        gpu_preprocess=settings.get("gpu_preprocess", "auto"),
    )


class LocalVLM:
    """The tasks in this process, on a model loaded here (no server)."""

    def __init__(self, settings: dict, threads: int = 1):
        t0 = time.perf_counter()
        self.vlm = _load(settings, threads)
        self.meta = dict(self.vlm.meta)
        self.stats = {"server": False, "load_seconds": time.perf_counter() - t0}

    def run(self, task: str, **kwargs) -> dict:
        return TASKS[task](self.vlm, **kwargs)


# ---------------------------------------------------------------------- the client
def allocation() -> str:
    """The allocation the jobs share: the SLURM job, else this machine's local run."""
    return f"slurm{os.environ['SLURM_JOB_ID']}" if os.environ.get("SLURM_JOB_ID") else "local"


def server_key(settings: dict) -> str:
    """Which server a job may use: same model settings, allocation, working directory and
    ethoflow code (a server never serves a job from another checkout or an edited model)."""
    here = Path(__file__).parent
    parts = {k: settings.get(k) for k in LOAD_KEYS}
    model = Path(str(settings["model"])).expanduser()
    stamp = [(p, (here / p).stat().st_mtime_ns) for p in _SOURCES if (here / p).exists()]
    if model.is_dir():
        stamp += [(f.name, f.stat().st_mtime_ns) for f in sorted(model.iterdir()) if f.is_file()]
    blob = json.dumps([parts, allocation(), os.getcwd(), stamp], sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


def socket_dir() -> Path:
    base = os.environ.get("ETHOFLOW_VLM_SOCKET_DIR") or f"/tmp/ethoflow-vlm-{os.getuid()}"
    d = Path(base)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if d.stat().st_uid == os.getuid():
        d.chmod(0o700)  # only this user may talk to its servers
    return d


class ServedVLM:
    """The tasks on this allocation's model server, started here if there is none."""

    def __init__(self, settings: dict, threads: int = 1, server: dict | None = None):
        server = server or {}
        self.settings = {k: v for k, v in settings.items() if k in LOAD_KEYS}
        self.threads = int(threads)
        self.idle_s = float(server.get("idle_s", 60))
        self.cache_gb = float(server.get("vision_cache_gb", 4))
        self.load_timeout = float(server.get("load_timeout_s", 1800))
        key = server_key(self.settings)
        self.address = str(socket_dir() / f"{key}.sock")
        self.log_path = Path("logs/vlm_server") / f"{allocation()}-{key}.log"
        self.meta: dict = {}
        self.stats: dict = {}
        hello = self._request(("hello",))
        self.meta = hello["meta"]
        self.stats = hello["stats"]

    def run(self, task: str, **kwargs) -> dict:
        result = self._request(("run", task, kwargs))
        self.stats = result.pop("_server")
        return result

    # ------------------------------------------------------------------ internals
    def _request(self, msg, retry: bool = True):
        conn = self._connect()
        try:
            conn.send(msg)
            reply = conn.recv()
        except (EOFError, ConnectionError, OSError):
            if not retry:
                raise RuntimeError(f"the VLM server died: see {self.log_path}") from None
            log.warning("the VLM server went away during a request: starting it again")
            return self._request(msg, retry=False)
        finally:
            conn.close()
        status = reply[0]
        if status == "ok":
            return reply[1]
        if status == "input_error":
            raise InputError(reply[1], reply[2])
        raise RuntimeError(f"VLM server ({self.log_path}): {reply[1]}")

    def _try(self):
        try:
            return Client(self.address, family="AF_UNIX", authkey=AUTH)
        except (EOFError, OSError):  # no server, or one that is dying
            return None

    def _connect(self):
        if (conn := self._try()) is not None:
            return conn
        with open(self.address + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one job starts the server, the others wait
            if (conn := self._try()) is not None:
                return conn
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)  # a dead server's socket
            return self._start()

    def _start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "ethoflow.vlm_server",
            "--address",
            self.address,
            "--settings",
            json.dumps(self.settings),
            "--threads",
            str(self.threads),
            "--idle-s",
            str(self.idle_s),
            "--vision-cache-gb",
            str(self.cache_gb),
        ]
        env = dict(os.environ)
        pkg = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg, env.get("PYTHONPATH")) if p)
        with open(self.log_path, "a") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives the job that started it
            )
        log.info("started the VLM server (pid %d, log %s)", proc.pid, self.log_path)
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.load_timeout:
            if (conn := self._try()) is not None:
                return conn
            if proc.poll() is not None:
                tail = self.log_path.read_text().splitlines()[-15:]
                if proc.returncode == 2 and tail:  # the model could not be loaded: bad input
                    raise InputError(self.settings["model"], tail[-1].split(": ", 2)[-1])
                raise RuntimeError("the VLM server stopped while starting:\n" + "\n".join(tail))
            time.sleep(0.2)
        proc.kill()
        raise RuntimeError(f"the VLM server did not start in {self.load_timeout:.0f} s")


def client(settings: dict, threads: int = 1, server: dict | None = None):
    """The VLM a job uses: the allocation's server (``vlm_server.enabled``, the default) or
    a model loaded in the job."""
    if server is not None and not server.get("enabled", True):
        return LocalVLM(settings, threads)
    return ServedVLM(settings, threads, server)


# ---------------------------------------------------------------------- the server
class _Server:
    def __init__(self, address: str, settings: dict, threads: int, idle_s: float, cache_gb):
        self.address = address
        self.idle_s = idle_s
        t0 = time.perf_counter()
        self.vlm = _load(settings, threads)
        self.vlm.share_vision(int(cache_gb * (1 << 30)))
        self.stats = {
            "server": True,
            "pid": os.getpid(),
            "loads": 1,
            "load_seconds": round(time.perf_counter() - t0, 3),
            "requests": 0,
        }
        log.info("model loaded once in %.1f s: %s", self.stats["load_seconds"], settings)
        self.model_lock = threading.Lock()
        self.state = threading.Lock()
        self.active = 0
        self.last = time.monotonic()

    def _stats(self) -> dict:
        return {**self.stats, **self.vlm.vision.stats()}

    def handle(self, conn) -> None:
        try:
            msg = conn.recv()
            if msg[0] == "hello":
                reply = ("ok", {"meta": dict(self.vlm.meta), "stats": self._stats()})
            else:
                _, task, kwargs = msg
                with self.model_lock:
                    before = self.vlm.vision.stats()
                    t0 = time.perf_counter()
                    try:
                        result = TASKS[task](self.vlm, **kwargs)
                    except InputError as err:
                        reply = ("input_error", err.path, err.problem)
                    except Exception as err:
                        log.error("%s failed:\n%s", task, traceback.format_exc())
                        reply = ("error", f"{task} failed: {type(err).__name__}: {err}")
                    else:
                        self.stats["requests"] += 1
                        after = self.vlm.vision.stats()
                        delta = {k: after[k] - before[k] for k in after}
                        result["_server"] = {**self._stats(), "this_request": delta}
                        reply = ("ok", result)
                        log.info(
                            "%s %s: %.2f s, clips encoded %d, from the cache %d",
                            task,
                            kwargs.get("clips"),
                            time.perf_counter() - t0,
                            delta["vision_encoded"],
                            delta["vision_cached"],
                        )
            try:
                conn.send(reply)
            except (BrokenPipeError, ConnectionError, OSError):
                log.warning("the job went away before its answer (killed?)")
        finally:
            conn.close()
            with self.state:
                self.active -= 1
                self.last = time.monotonic()

    def watchdog(self, listener) -> None:
        checked = time.monotonic()
        while True:
            time.sleep(0.5)
            with self.state:
                idle = self.active == 0 and time.monotonic() - self.last > self.idle_s
                if idle:
                    self._exit(f"idle for {self.idle_s:.0f} s")
            if time.monotonic() - checked > ALLOCATION_CHECK_S:
                checked = time.monotonic()
                if not allocation_alive():
                    with self.state:
                        self._exit(f"SLURM job {os.environ.get('SLURM_JOB_ID')} has ended")

    def _exit(self, why: str) -> None:
        """Leave (under ``self.state``): no new job can reach a server that is going."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)
        log.info(
            "%s after %d requests: exiting (%s)",
            why,
            self.stats["requests"],
            self.vlm.vision.stats(),
        )
        logging.shutdown()
        os._exit(0)

    def serve(self) -> None:
        listener = Listener(self.address, family="AF_UNIX", authkey=AUTH)
        log.info("serving on %s", self.address)
        threading.Thread(target=self.watchdog, args=(listener,), daemon=True).start()
        while True:
            try:
                conn = listener.accept()
            except Exception as err:  # a client that failed the handshake
                log.warning("refused a connection: %s", err)
                continue
            with self.state:
                self.active += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ethoflow.vlm_server")
    ap.add_argument("--address", required=True)
    ap.add_argument("--settings", required=True, help="JSON of the LOAD_KEYS (model, ...)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--idle-s", type=float, default=60)
    ap.add_argument("--vision-cache-gb", type=float, default=4)
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s pid %(process)d %(levelname)s %(message)s"
    )
    try:
        server = _Server(
            args.address, json.loads(args.settings), args.threads, args.idle_s, args.vision_cache_gb
        )
    except InputError as err:
        log.error("%s", err)
        raise SystemExit(2) from None
    server.serve()


if __name__ == "__main__":
    main()
