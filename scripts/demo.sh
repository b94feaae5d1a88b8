#!/usr/bin/env bash
# The whole system on the real NIH sample, end to end: install, local Neo4j + GDS, a short
# DenseNet-121 training, codes, graph, GDS Louvain communities, a few queries, the evaluation
# report. Leaves Neo4j running so the graph can be explored in Neo4j Browser.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CXRNEO_NEO4J_PASSWORD:?set CXRNEO_NEO4J_PASSWORD (8 or more characters): it becomes the demo Neo4j password}"
bash scripts/setup.sh
. .venv/bin/activate

out="${CXRNEO_DEMO_OUT:-$PWD/runs/demo}"
export CXRNEO_DATA_DIR="${CXRNEO_DATA_DIR:-$out/neo4j}"   # the demo's own server and database
epochs="${CXRNEO_DEMO_EPOCHS:-1}"
data=../shared/data/nih-sample
[ -d "$data/images-224" ] || data=examples/nih-224     # the few images bundled in the repo
images="$data/images-224"; [ -d "$images" ] || images="$data/images"
mkdir -p "$out"
n_images=$(( $(wc -l < "$data/Data_Entry_2017.csv") - 1 ))
queries=$(( n_images / 5 < 120 ? n_images / 5 : 120 ))   # 120 of the 621 sample images
degree=$(( n_images < 200 ? 5 : 20 ))
step() { echo; echo "== $*"; }

step "1/7 local Neo4j + Graph Data Science"
cxrneo db start
cxrneo db status

step "2/7 train DenseNet-121 ($epochs epochs, 224 px, CPU unless a GPU is present) on $data"
resume=(); [ -f "$out/checkpoint/last.pt" ] && resume=(--resume)   # a second run continues
cxrneo train --labels "$data/Data_Entry_2017.csv" --images "$images" --size 224 \
  --epochs "$epochs" --batch-size 16 --out "$out/checkpoint" "${resume[@]}"

step "3/7 1024-d codes of every image"
cxrneo embed "$out/checkpoint" --labels "$data/Data_Entry_2017.csv" --images "$images" \
  --out "$out/codes.npz"

step "4/7 evaluation: patient split, graph of the database part, GDS Louvain, four methods"
cxrneo db reset --yes
cxrneo evaluate "$out/codes.npz" --out "$out/report" --queries "$queries" --mean-degree "$degree" \
  --label-set nih --label-set nih-u --image-root "$images" > "$out/evaluate.log"
tail -n 40 "$out/evaluate.log"

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

Done.
  report:        $out/report/report.html   (summary: $out/report/summary.md)
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
