"""kustomer_activations."""
