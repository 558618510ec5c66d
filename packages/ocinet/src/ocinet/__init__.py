"""ocinet: CNI plugin invocation and pinned namespaces.

- :class:`PodNetwork` attaches pods to the default (or a named) network of a watched
  configuration directory; :class:`CNI` runs any network's plugin chain directly.
- :func:`pin_pod_namespaces` / :func:`create_namespace` pin net, ipc and uts namespaces
  as bind-mounted files; :class:`Namespace` runs functions and commands inside them.
"""

from __future__ import annotations

from ocinet.cache import DEFAULT_CACHE_DIR, CachedAttachment, ResultCache
from ocinet.cni import CNI, run_sync
from ocinet.confdir import DEFAULT_CONF_DIR, ConfigDir, Readiness
from ocinet.config import (
    ConfigDirContents,
    NetworkConfig,
    PluginConfig,
    load_config_dir,
    load_network_config,
    parse_network_config,
)
from ocinet.errors import (
    CNIError,
    ConfigError,
    NamespaceError,
    NetError,
    NetworkNotFoundError,
    NetworkNotReadyError,
    PluginNotFoundError,
    PluginTimeoutError,
    ResultError,
)
from ocinet.invoke import (
    DEFAULT_PLUGIN_DIRS,
    PluginExecutor,
    PluginRequest,
    SubprocessExecutor,
    find_plugin,
)
from ocinet.netns import (
    CommandResult,
    Namespace,
    NamespaceKind,
    PodNamespaces,
    create_namespace,
    pin_pod_namespaces,
    remove_namespace,
    run_in_namespaces,
    run_in_namespaces_sync,
)
from ocinet.podnet import PodNetwork
from ocinet.result import DNS, Interface, IPConfig, Result, Route, VersionInfo
from ocinet.runtime import Bandwidth, PodRef, PortMapping, RuntimeConf
from ocinet.version import CURRENT_VERSION, SUPPORTED_VERSIONS

__version__ = "0.1.0"

__all__ = [
    "CNI",
    "CURRENT_VERSION",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CONF_DIR",
    "DEFAULT_PLUGIN_DIRS",
    "DNS",
    "SUPPORTED_VERSIONS",
    "Bandwidth",
    "CNIError",
    "CachedAttachment",
    "CommandResult",
    "ConfigDir",
    "ConfigDirContents",
    "ConfigError",
    "IPConfig",
    "Interface",
    "Namespace",
    "NamespaceError",
    "NamespaceKind",
    "NetError",
    "NetworkConfig",
    "NetworkNotFoundError",
    "NetworkNotReadyError",
    "PluginConfig",
    "PluginExecutor",
    "PluginNotFoundError",
    "PluginRequest",
    "PluginTimeoutError",
    "PodNamespaces",
    "PodNetwork",
    "PodRef",
    "PortMapping",
    "Readiness",
    "Result",
    "ResultCache",
    "ResultError",
    "Route",
    "RuntimeConf",
    "SubprocessExecutor",
    "VersionInfo",
    "__version__",
    "create_namespace",
    "find_plugin",
    "load_config_dir",
    "load_network_config",
    "parse_network_config",
    "pin_pod_namespaces",
    "remove_namespace",
    "run_in_namespaces",
    "run_in_namespaces_sync",
    "run_sync",
]
