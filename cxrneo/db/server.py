"""A local Neo4j 5.26 + open GDS server assembled from Maven Central: no Docker needed.

Layout under the data directory:

* ``neo4j-<version>-gds-<version>/{lib,plugins}``: the distribution, assembled once with
  Maven from ``server-pom.xml`` (later starts need no network);
* ``server/{conf,data,logs,run,import}``: the instance (its database and logs).

The server JVM is started directly on ``org.neo4j.server.CommunityEntryPoint`` in its own
process session, so it outlives the CLI; ``stop`` sends SIGTERM and waits for it to exit.
"""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

from cxrneo.errors import ServerError

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN = "org.neo4j.server.startup.Neo4jAdminCommand"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"  # what ADMIN re-launches in a child JVM with the same arguments
JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
]


def pom_path() -> Path:
    """The Maven project that pins the Neo4j and GDS versions."""
    return Path(str(resources.files("cxrneo.db") / "server-pom.xml"))


def pinned_versions() -> tuple[str, str]:
    """(Neo4j version, GDS version) as pinned in server-pom.xml."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = ET.parse(pom_path()).getroot().find("m:properties", ns)
    if props is None:
        raise ServerError("server-pom.xml has no <properties>")
    neo = props.findtext("m:neo4j.version", namespaces=ns)
    gds = props.findtext("m:gds.version", namespaces=ns)
    if not neo or not gds:
        raise ServerError("server-pom.xml does not pin neo4j.version and gds.version")
    return neo, gds


@dataclass(frozen=True)
class ServerConfig:
    """Where the server lives and how it listens (loopback only)."""

    data_dir: Path
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "4g"
    pagecache: str = "4g"

    @classmethod
    def from_uri(
        cls, data_dir: Path, uri: str, http_port: int, heap: str = "4g", pagecache: str = "4g"
    ) -> "ServerConfig":
        parsed = urlparse(uri)
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ServerError(f"the local server listens on loopback only; {uri} is not local")
        return cls(data_dir=Path(data_dir), bolt_port=parsed.port or 7687, http_port=http_port,
                   heap=heap, pagecache=pagecache)

    @property
    def dist(self) -> Path:
        """The assembled jars; a changed pom gets a fresh folder."""
        neo, gds = pinned_versions()
        digest = hashlib.sha256(pom_path().read_bytes()).hexdigest()[:8]
        return self.data_dir / f"neo4j-{neo}-gds-{gds}-{digest}"

    @property
    def home(self) -> Path:
        return self.data_dir / "server"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "cxrneo-neo4j.pid"

    @property
    def bolt_address(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def http_address(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def java() -> str:
    """A Java 17 or 21 executable (JAVA_HOME first)."""
    home = os.environ.get("JAVA_HOME")
    exe = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not exe or not Path(exe).exists():
        raise ServerError("no java found: install a JDK 17 (or set JAVA_HOME)")
    return exe


def assemble(
    cfg: ServerConfig, maven_repo: Path | None = None, progress: Callable[[str], None] | None = None
) -> float:
    """Fetch Neo4j + GDS jars with Maven into the distribution folder; returns seconds taken.

    `maven_repo` replaces Maven's local repository (~/.m2/repository); `progress` gets a line
    before each step."""
    if (cfg.dist / "ASSEMBLED").exists():
        return 0.0
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServerError("the local server is assembled with Maven: install it (apt-get install maven)")
    t0 = time.monotonic()
    tmp = cfg.dist.with_name(cfg.dist.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for folder, flag in (("lib", "-DexcludeGroupIds=org.neo4j.gds"), ("plugins", "-DincludeGroupIds=org.neo4j.gds")):
        cmd = [mvn, "-q", "-B", "-f", str(pom_path()), "dependency:copy-dependencies",
               f"-DoutputDirectory={tmp / folder}", "-DincludeScope=runtime", flag]
        if maven_repo is not None:
            cmd.append(f"-Dmaven.repo.local={maven_repo}")
        if progress is not None:
            progress(f"Maven: copying the {folder} jars into {tmp / folder}")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise ServerError("Maven could not assemble Neo4j + GDS: " + " | ".join(tail))
    (tmp / "ASSEMBLED").write_text(" ".join(pinned_versions()) + "\n")
    shutil.rmtree(cfg.dist, ignore_errors=True)
    tmp.rename(cfg.dist)
    return time.monotonic() - t0


def megabytes(size: str) -> int:
    """A JVM memory size ("512m", "4g", "2048k") in MiB."""
    scale = {"k": 1 / 1024, "m": 1, "g": 1024}
    return int(int(size[:-1]) * scale[size[-1].lower()])


def vector_build_buffer_mb(heap: str) -> int:
    """The vector index's population buffer: a quarter of the heap, at least 64 MiB.

    Neo4j builds a vector index with a 1 MiB Lucene buffer by default, so one population batch
    (about 1,400 codes) becomes one segment: 79 segments at 111,620 codes, merged later, 50 at a
    time, when a later write touches the index (docs/scale.md, *The vector index*: 10 minutes of a
    core after a 500-image ingest). With a quarter of a 4 GiB heap the whole archive (about 4.5 KiB
    a code while it is built) fits in one or a few segments that never need a merge."""
    return max(64, megabytes(heap) // 4)


def _private_dir(path: Path) -> None:
    """A folder only its owner can enter (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_conf(cfg: ServerConfig) -> Path:
    conf = cfg.home / "conf"
    _private_dir(cfg.home)
    for sub in ("conf", "data", "logs", "run", "import"):
        _private_dir(cfg.home / sub)
    lines = [
        "# written by cxrneo db start; edit CXRNEO_* settings instead",
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        f"server.bolt.listen_address=127.0.0.1:{cfg.bolt_port}",
        f"server.bolt.advertised_address=127.0.0.1:{cfg.bolt_port}",
        f"server.http.listen_address=127.0.0.1:{cfg.http_port}",
        f"server.http.advertised_address=127.0.0.1:{cfg.http_port}",
        "server.https.enabled=false",
        f"server.directories.plugins={cfg.dist / 'plugins'}",
        # LOAD CSV reads only files under import/ (file:///etc/passwd means import/etc/passwd)
        # and no URL at all: every address is on the block list
        f"server.directories.import={cfg.home / 'import'}",
        "dbms.security.allow_csv_import_from_file_urls=true",
        "internal.dbms.cypher_ip_blocklist=0.0.0.0/0,::/0",
        f"server.memory.heap.initial_size={cfg.heap}",
        f"server.memory.heap.max_size={cfg.heap}",
        f"server.memory.pagecache.size={cfg.pagecache}",
        "dbms.security.auth_enabled=true",
        "dbms.security.procedures.unrestricted=gds.*",
        "dbms.usage_report.enabled=false",
        "db.tx_log.rotation.retention_policy=1 files",
        f"internal.dbms.index.vector.population_ram_buffer_size={vector_build_buffer_mb(cfg.heap)}",
    ]
    (conf / "neo4j.conf").write_text("\n".join(lines) + "\n")
    return conf


ENV_KEEP = ("PATH", "JAVA_HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


def admin_env(cfg: ServerConfig) -> dict[str, str]:
    """The environment of the server JVM and of neo4j-admin: scrubbed, so that no secret of the
    caller (CXRNEO_NEO4J_PASSWORD, cloud keys, ...) reaches it (/proc/<pid>/environ)."""
    kept = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    return {**kept, "HOME": str(cfg.home), "NEO4J_HOME": str(cfg.home), "NEO4J_CONF": str(cfg.home / "conf")}


def _argfile_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def auth_file(cfg: ServerConfig) -> Path:
    return cfg.home / "data" / "dbms" / "auth.ini"


def _set_initial_password(cfg: ServerConfig, password: str) -> None:
    if auth_file(cfg).exists():
        return  # only possible before the first start; later changes go through Cypher
    if len(password) < 8:
        raise ServerError("the Neo4j password needs at least 8 characters")
    if any(c in password for c in "\n\r\0"):
        raise ServerError("the Neo4j password must not hold line breaks or NUL characters")
    # The password never appears on a command line (ps): the java launcher reads the main class
    # and its arguments from an argument file only the owner can read, deleted right after. The
    # admin tool is run directly: the neo4j-admin bootloader would re-launch it with the
    # arguments spelled out on the child's command line.
    argfile = cfg.home / "run" / f"initial-password-{os.getpid()}.args"
    fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            # "--" ends the options: a password may start with "-"
            f.write(f"{ADMIN_TOOL}\ndbms\nset-initial-password\n--\n{_argfile_quote(password)}\n")
        cmd = [java(), "-cp", f"{cfg.dist / 'lib'}/*", f"-Dbasedir={cfg.home}", "-Dfile.encoding=UTF-8",
               f"@{argfile}"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=admin_env(cfg), umask=0o077)
    finally:
        argfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise ServerError("could not set the initial password: " + (done.stderr or done.stdout).strip()[-300:])
    _make_private(cfg)


def _make_private(cfg: ServerConfig) -> None:
    """Data, logs and the auth file readable by their owner only (700 folders, 600 files)."""
    for sub in ("data", "logs", "run", "conf"):
        root = cfg.home / sub
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")]:
            if path.is_symlink():
                continue
            path.chmod(0o700 if path.is_dir() else 0o600)


def running_pid(cfg: ServerConfig) -> int | None:
    """The pid of our server if it is alive."""
    try:
        pid = int(cfg.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and ENTRY_POINT.encode() not in cmdline.read_bytes():
        return None  # a stale pid file pointing at some other process
    return pid


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def log_tail(cfg: ServerConfig, lines: int = 8) -> str:
    """The last lines of the server's logs, to explain a failure."""
    out: list[str] = []
    for name in ("console.log", "neo4j.log"):
        path = cfg.home / "logs" / name
        if path.exists():
            out += [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()][-lines:]
    return "\n  ".join(out[-lines:]) or "(no log lines)"


def start(cfg: ServerConfig, password: str, timeout: float = 180.0) -> bool:
    """Start the server; False when it was already running. Raises ServerError on failure."""
    if running_pid(cfg) is not None:
        return False
    for port in (cfg.bolt_port, cfg.http_port):
        if port_open(port):
            raise ServerError(f"port {port} on 127.0.0.1 is taken by another process")
    assemble(cfg)
    conf = _write_conf(cfg)
    _set_initial_password(cfg, password)
    classpath = f"{cfg.dist / 'plugins'}/*:{cfg.dist / 'lib'}/*"
    cmd = [java(), "-cp", classpath, f"-Xms{cfg.heap}", f"-Xmx{cfg.heap}", *JVM_FLAGS,
           ENTRY_POINT, f"--home-dir={cfg.home}", f"--config-dir={conf}"]
    _make_private(cfg)
    fd = os.open(cfg.home / "logs" / "console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=admin_env(cfg), cwd=cfg.home, start_new_session=True, umask=0o077)
    cfg.pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            cfg.pid_file.unlink(missing_ok=True)
            raise ServerError(f"Neo4j exited with code {proc.returncode} while starting:\n  {log_tail(cfg)}")
        if port_open(cfg.bolt_port) and port_open(cfg.http_port):
            return True
        time.sleep(0.5)
    stop(cfg)
    raise ServerError(f"Neo4j did not open port {cfg.bolt_port} within {timeout:.0f} s:\n  {log_tail(cfg)}")


def stop(cfg: ServerConfig, timeout: float = 90.0) -> bool:
    """SIGTERM the server and wait until its JVM is gone; False when none was running."""
    pid = running_pid(cfg)
    if pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        _reap(pid)
        time.sleep(0.3)
    else:
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (tests start it in-process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
