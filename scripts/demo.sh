#!/usr/bin/env bash
# The whole system on the real NIH sample bundled in examples/nih-sample, end to end: install,
# local Neo4j + GDS, DenseNet-121 training (30 epochs on a CUDA GPU, 1 on a CPU), codes, graph,
# GDS Louvain communities, the evaluation report, a few queries. Leaves Neo4j running so the
# graph can be explored in Neo4j Browser.
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

# A GPU trains long enough for codes that beat random retrieval; a CPU gets a short run.
gpu=$(python -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')
if [ -n "$gpu" ]; then
  device="GPU ($gpu)"; epochs="${CXRNEO_DEMO_EPOCHS:-30}"; batch=32
  workers=$(( $(nproc) > 8 ? 8 : $(nproc) ))
else
  device="CPU ($(nproc) cores; no CUDA GPU found)"; epochs="${CXRNEO_DEMO_EPOCHS:-1}"; batch=16; workers=2
fi
echo "data:   $n_images real NIH ChestX-ray14 images, 224 px ($data; NIH Clinical Center, see examples/README.md)"
echo "device: $device: $(plural "$epochs" epoch) of DenseNet-121 training (CXRNEO_DEMO_EPOCHS overrides)"
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

step "1/7 local Neo4j + Graph Data Science"
cxrneo db start
cxrneo db status

step "2/7 train DenseNet-121: $(plural "$epochs" epoch), 224 px, on $device"
resume=(); [ -f "$out/checkpoint/last.pt" ] && resume=(--resume)   # a second run continues
cxrneo train --labels "$data/Data_Entry_2017.csv" --images "$images" --size 224 \
  --epochs "$epochs" --batch-size "$batch" --workers "$workers" --out "$out/checkpoint" "${resume[@]}"

step "3/7 1024-d codes of every image"
cxrneo embed "$out/checkpoint" --labels "$data/Data_Entry_2017.csv" --images "$images" \
  --workers "$workers" --out "$out/codes.npz"

step "4/7 evaluation: patient split, graph of the database part, GDS Louvain, four methods"
cxrneo db reset --yes
cxrneo evaluate "$out/codes.npz" --out "$out/report" --queries "$queries" --mean-degree "$degree" \
  --label-set nih --label-set nih-u --image-root "$images" > "$out/evaluate.log"
# the run's facts and the main table (label set nih, abnormal queries: the paper's form)
awk '/^## / { sec = $0 } sec == "" || sec == "## nih, abnormal queries only"' "$out/evaluate.log"
echo "(every label set and form, query times: $out/evaluate.log and $out/report/summary.md)"

step "5/7 the whole archive into Neo4j"
cxrneo db reset --yes
cxrneo ingest "$out/codes.npz" --mean-degree "$degree"

step "6/7 GDS Louvain communities"
cxrneo communities

step "7/7 three queries by stored image id (well-connected images with findings)"
ids=$(python -c 'from cxrneo.db.connection import Database; from cxrneo.db.graphview import example_queries
from cxrneo.settings import Settings
with Database.connect(Settings()) as db: print(" ".join(example_queries(db, 3)))')
set -- $ids
cxrneo query "$1" -k 5 --method community
cxrneo query "$2" -k 5 --method hybrid
cxrneo query "$3" -k 5 --method knn

http=$(cxrneo db status | sed -n 's/.*HTTP \(http[^ ]*\).*/\1/p')
cat <<MSG

Done: $n_images NIH images, $(plural "$epochs" epoch) on ${gpu:-the CPU}.
  report:        $out/report/report.html   (tables: $out/report/summary.md, log: $out/evaluate.log)
  checkpoint:    $out/checkpoint/best.pt (inference only; last.pt adds the optimizer state for --resume)
  Neo4j Browser: $http/browser/  (user neo4j, your CXRNEO_NEO4J_PASSWORD; guide: cypher/browser-guide.md)
  stop Neo4j:    CXRNEO_DATA_DIR=$CXRNEO_DATA_DIR .venv/bin/cxrneo db stop

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
