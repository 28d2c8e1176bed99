"""Label Studio, live: a local server for development, and the round trip through its API.

`server` runs a Label Studio of its own (own virtual environment, own data folder); `client`
connects to any Label Studio and turns its failures into messages that say what to do;
`label_config` builds and reads labelling configs; `projects`, `pull`, `predictions` and
`review` are the steps of the round trip the CLI exposes.
"""
