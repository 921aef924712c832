// Placeholder: replaced by the real driftctl entry point.
int main() { return 0; }
