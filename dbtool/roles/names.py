"""What a service's three roles are called, and where their passwords come from."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SERVICE_NAME, Settings, discover_services, load_toml
from ..errors import BadInput

CONFIG_FILE = "dbtool.toml"
KINDS = ("owner", "app", "readonly")
# Role names stop at 63 bytes; the longest suffix is "_readonly".
MAX_PREFIX = 63 - len("_readonly")


@dataclass(frozen=True)
class RoleNames:
    service: str
    owner: str
    app: str
    readonly: str

    @property
    def all(self) -> tuple[str, str, str]:
        return (self.owner, self.app, self.readonly)


def names_for(service: str, prefix: str) -> RoleNames:
    return RoleNames(service, f"{prefix}_owner", f"{prefix}_app", f"{prefix}_readonly")


def role_names(settings: Settings, service: str) -> RoleNames:
    """`<service>_owner`, `_app`, `_readonly`, or `<prefix>_...` from [roles] prefix in dbtool.toml."""
    path = settings.schemas_dir / service / CONFIG_FILE
    prefix = service
    if path.exists():
        section = load_toml(path).get("roles", {})
        if not isinstance(section, dict):
            raise BadInput(f"{path}: [roles] must be a table, e.g. [roles] prefix = \"{service}\"")
        prefix = section.get("prefix", service)
        if not isinstance(prefix, str) or not SERVICE_NAME.match(prefix) or len(prefix) > MAX_PREFIX:
            raise BadInput(f"{path}: [roles] prefix {prefix!r} is not a role name prefix; use lower-case"
                           f" letters, digits and _ (at most {MAX_PREFIX}), e.g. prefix = \"{service}\"")
    return names_for(service, prefix)


def every_service_names(settings: Settings) -> list[RoleNames]:
    """The roles of every service under schemas/, to find one service's roles in another's database."""
    return [role_names(settings, s) for s in discover_services(settings.schemas_dir)]


def password_variable(role: str) -> str:
    """The environment variable holding a login role's password, e.g. IDENTITY_APP_PASSWORD."""
    return f"{role.upper()}_PASSWORD"
