"""The build plane's library: sources, uploads, parsing, screening, chunking, checks, evaluation and the stages."""
