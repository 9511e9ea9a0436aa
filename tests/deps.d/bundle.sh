# The update bundle's signature tests: the minisign program checks the
# signatures hvnode writes and signs bundles hvnode must accept.
need_prog minisign minisign
