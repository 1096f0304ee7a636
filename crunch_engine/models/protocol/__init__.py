"""The participant-model wire protocol: the CrunchDAO-compatible ``.proto`` files, their
generated modules (regenerate with ``scripts/gen_protos.sh``) and the Variant codec.

Importing this package never imports grpcio: the model server only needs protobuf.
"""
