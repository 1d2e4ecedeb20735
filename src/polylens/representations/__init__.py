"""Ways of representing an item, one module each (see :mod:`polylens.representations.base`):
``image_text`` (CLIP/SigLIP embeddings), ``text_embedding`` (MiniLM and other text
embedders), ``bm25`` (lexical, over text layers, OCR and passages), ``phash`` (perceptual
hashes for near-duplicates). The registry lists them; plugins add more through the
``polylens.representations`` entry-point group."""
