// Placeholder translation unit until the CLI library lands.
namespace driftwatch::cli {}
