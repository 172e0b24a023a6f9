"""The jobs themselves, one thin recipe each (setup → train or generate → save), read top to bottom."""
