"""The framework tests run with the framework virtualenv's interpreter (scripts/run_framework_tests.sh),
never with Debian's python3. A framework that does not import there is a broken environment, not a
reason to skip: the tests fail loudly instead (set CAIRN_FRAMEWORKS_OPTIONAL=1 to skip them)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))           # real_cluster, fake_sidecar
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the cairn package

# TensorFlow's and JAX's start-up chatter would drown pytest's report; keep their errors
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

