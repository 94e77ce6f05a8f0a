"""Pure core: election model, tally sheets, validation, tallies, results. No I/O."""
