# Sourced by the scripts that run PostgreSQL clusters.  PostgreSQL refuses
# to run as root: as root, commands run as the postgres user.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
