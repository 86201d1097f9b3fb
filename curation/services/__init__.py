"""Services write: each function changes the database and says what it did."""
