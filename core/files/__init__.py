"""Everything that reads a file the user brings: content sniffing, the sandboxed probe,
checkpoints, images, user datasets and input specs. Nothing here trusts a file."""
