"""Dataset generation: a policy drives the expert over seed instructions; failed evolutions are
eliminated, near-duplicates dropped, every kept instruction answered; the data card."""
