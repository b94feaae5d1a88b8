#!/usr/bin/env bash
# The whole system on the real NIH sample bundled in examples/nih-sample, end to end: install,
# local Neo4j + GDS, DenseNet-121 (30 epochs of training on a CUDA GPU; on a CPU the checkpoint
# shipped in examples/checkpoint), codes, graph, GDS Louvain communities, the evaluation report, a
# few queries, and the viewer. Leaves Neo4j and the viewer running.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CXRNEO_NEO4J_PASSWORD:?set CXRNEO_NEO4J_PASSWORD (8 or more characters): it becomes the demo Neo4j password}"
bash scripts/setup.sh
. .venv/bin/activate

out="${CXRNEO_DEMO_OUT:-$PWD/runs/demo}"
export CXRNEO_DATA_DIR="${CXRNEO_DATA_DIR:-$out/neo4j}"   # the demo's own server and database
data=examples/nih-sample        # 621 real NIH ChestX-ray14 images at 224 px, in the repository
images="$data/images"
mkdir -p "$out"
n_images=$(( $(wc -l < "$data/Data_Entry_2017.csv") - 1 ))
queries=$(( n_images / 5 < 120 ? n_images / 5 : 120 ))   # 120 of the 621 sample images
degree=$(( n_images < 200 ? 5 : 20 ))
step() { echo; echo "== $*"; }
# Piped into a file or `tee`, rich would assume 80 columns and break lines mid-sentence.
[ -t 1 ] || export COLUMNS="${COLUMNS:-160}"
plural() { if [ "$1" = 1 ]; then echo "$1 $2"; else echo "$1 ${3:-$2s}"; fi; }

# A GPU trains long enough for codes that beat random retrieval. One CPU epoch does not, so a CPU uses
# the checkpoint shipped in examples/checkpoint (trained on the sample's database part only, see
# examples/README.md) unless CXRNEO_DEMO_TRAIN=1.
gpu=$(python -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')
shipped=examples/checkpoint/best.pt
if [ -n "$gpu" ]; then
  device="GPU ($gpu)"; epochs="${CXRNEO_DEMO_EPOCHS:-30}"; batch=32; train=1
  workers=$(( $(nproc) > 8 ? 8 : $(nproc) ))
else
  device="CPU ($(nproc) cores; no CUDA GPU found)"; epochs="${CXRNEO_DEMO_EPOCHS:-1}"; batch=16; workers=2
  train="${CXRNEO_DEMO_TRAIN:-0}"
fi
echo "data:   $n_images real NIH ChestX-ray14 images, 224 px ($data; NIH Clinical Center, see examples/README.md)"
if [ "$train" = 1 ]; then
  ckpt="$out/checkpoint/best.pt"
  echo "device: $device: $(plural "$epochs" epoch) of DenseNet-121 training (CXRNEO_DEMO_EPOCHS overrides)"
else
  ckpt="$shipped"
  echo "device: $device: the shipped checkpoint $shipped (CXRNEO_DEMO_TRAIN=1 trains $(plural "$epochs" epoch) instead)"
fi
echo "output: $out"

# The Neo4j + GDS jars (about 150 MB) are assembled once per machine, in the folder `cxrneo db start`
# uses by default; the demo keeps its own database but links the same jars.
jars_home="${CXRNEO_JARS_DIR:-$HOME/.cxrneo}"
dist=$(python -c 'import sys; from pathlib import Path; from cxrneo.db.server import ServerConfig
print(ServerConfig(data_dir=Path(sys.argv[1])).dist.name)' "$CXRNEO_DATA_DIR")
if [ ! -e "$CXRNEO_DATA_DIR/$dist" ] && [ "$(realpath -m "$jars_home")" != "$(realpath -m "$CXRNEO_DATA_DIR")" ]; then
  if [ ! -f "$jars_home/$dist/ASSEMBLED" ]; then
    echo "assembling Neo4j + GDS once, into $jars_home/$dist (shared with \`cxrneo db start\`)"
    python -c 'import sys; from pathlib import Path; from cxrneo.db import server
print(f"assembled in {server.assemble(server.ServerConfig(data_dir=Path(sys.argv[1]))):.0f} s")' "$jars_home"
  fi
  mkdir -p "$CXRNEO_DATA_DIR"
  ln -s "$(realpath "$jars_home/$dist")" "$CXRNEO_DATA_DIR/$dist"
fi

step "1/8 local Neo4j + Graph Data Science"
cxrneo db start
cxrneo db status

if [ "$train" = 1 ]; then
  step "2/8 train DenseNet-121: $(plural "$epochs" epoch), 224 px, on $device"
  resume=(); [ -f "$out/checkpoint/last.pt" ] && resume=(--resume)   # a second run continues
  cxrneo train --labels "$data/Data_Entry_2017.csv" --images "$images" --size 224 \
    --epochs "$epochs" --batch-size "$batch" --workers "$workers" --out "$out/checkpoint" "${resume[@]}"
else
  step "2/8 DenseNet-121: the shipped checkpoint (no GPU here; CXRNEO_DEMO_TRAIN=1 trains instead)"
  python - "$shipped" <<'PY'
import sys, torch
doc = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
m, c = doc["metrics"], doc["config"]
print(f"{sys.argv[1]}: trained by `cxrneo train` on {len(doc['split']['train'])} + {len(doc['split']['val'])} images "
      f"of the sample's database part ({c['size']} px, seed {c['seed']}, {c['schedule']} schedule"
      f"{', augmented' if c['augment'] else ''}); epoch {m['epoch']}, validation mean AUC {m['mean_auc']:.3f}; "
      f"the evaluation's query patients were never seen (examples/README.md)")
PY
fi

step "3/8 1024-d codes of every image"
cxrneo embed "$ckpt" --labels "$data/Data_Entry_2017.csv" --images "$images" \
  --workers "$workers" --out "$out/codes.npz"

step "4/8 evaluation: patient split, graph of the database part, GDS Louvain, four methods, raw and whitened codes"
cxrneo db reset --yes
cxrneo evaluate "$out/codes.npz" --out "$out/report" --queries "$queries" --mean-degree "$degree" \
  --label-set nih --label-set nih-u --image-root "$images" --whiten auto > "$out/evaluate.log"
# the run's facts and the main table (label set nih, abnormal queries: the paper's form)
awk '/^## / { sec = $0 } sec == "" || sec == "## nih, abnormal queries only"' "$out/evaluate.log"
echo "(every label set and form, query times: $out/evaluate.log and $out/report/summary.md)"

step "5/8 the whole archive into Neo4j"
cxrneo db reset --yes
cxrneo ingest "$out/codes.npz" --mean-degree "$degree"

step "6/8 GDS Louvain communities"
cxrneo communities

step "7/8 three queries by stored image id (well-connected images with findings)"
ids=$(python -c 'from cxrneo.db.connection import Database; from cxrneo.db.stored import example_queries
from cxrneo.settings import Settings
with Database.connect(Settings()) as db: print(" ".join(example_queries(db, 3)))')
set -- $ids
cxrneo query "$1" -k 5 --method community
cxrneo query "$2" -k 5 --method hybrid
cxrneo query "$3" -k 5 --method knn

step "8/8 the viewer: cxrneo serve"
port="${CXRNEO_DEMO_PORT:-8000}"
pidfile="$out/serve.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then kill "$(cat "$pidfile")"; sleep 1; fi
nohup cxrneo serve --checkpoint "$ckpt" --images "$images" --port "$port" > "$out/serve.log" 2>&1 &
echo $! > "$pidfile"
python - "http://127.0.0.1:$port/health" "$!" "$out/serve.log" <<'PY'
import json, os, sys, time, urllib.request
for _ in range(240):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
            if json.loads(r.read()).get("status") == "ok":
                sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(int(sys.argv[2]), 0)
    except OSError:
        sys.exit(f"cxrneo serve stopped: {open(sys.argv[3]).read().strip().splitlines()[-1:]} (log {sys.argv[3]})")
    time.sleep(0.5)
sys.exit(f"cxrneo serve did not answer in 120 s (log {sys.argv[3]})")
PY

http=$(cxrneo db status | sed -n 's/.*HTTP \(http[^ ]*\).*/\1/p')
if [ "$train" = 1 ]; then trained="$(plural "$epochs" epoch) on ${gpu:-the CPU}"; else trained="the shipped checkpoint"; fi
cat <<MSG

Done: $n_images NIH images, $trained.
  the viewer:    http://localhost:$port/   (query by image or id, results with findings, the neighbourhood)
                 try http://localhost:$port/?id=$1
  report:        $out/report/report.html   (tables: $out/report/summary.md, log: $out/evaluate.log)
  checkpoint:    $ckpt
  Neo4j Browser: $http/browser/  (user neo4j, your CXRNEO_NEO4J_PASSWORD; guide: cypher/browser-guide.md)
  stop them:     kill \$(cat $pidfile)    # the viewer (log: $out/serve.log)
                 CXRNEO_DATA_DIR=$CXRNEO_DATA_DIR .venv/bin/cxrneo db stop

Three Cypher queries worth pasting into the Browser:
  // an image, its community and its nearest images
  MATCH (i:Image {id: '$1'})-[s:SIMILAR]-(j:Image) RETURN i, s, j ORDER BY s.cosine DESC LIMIT 10;
  // communities by dominant finding
  MATCH (i:Image) UNWIND (CASE i.labels WHEN [] THEN ['No Finding'] ELSE i.labels END) AS f
  WITH i.community AS c, f, count(*) AS n ORDER BY n DESC
  RETURN c, collect(f)[0] AS dominant, sum(n) AS mentions ORDER BY mentions DESC LIMIT 15;
  // the strongest bridges between communities
  MATCH (a:Community)-[l:LINKED]->(b:Community) RETURN a.id, a.n, b.id, b.n, l.edges ORDER BY l.edges DESC LIMIT 10;
MSG
