"""Every operation of the API and the CLI, one module per resource. Importing this
package registers them all in ``api.registry.OPERATIONS``."""

from golive.api.operations import (  # noqa: F401
    agents,
    dashboard,
    deployments,
    drafting,
    ledgers,
    notify,
    orders,
    people,
    pipeline,
    project_settings,
    settings,
)
