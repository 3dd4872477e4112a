"""Times pymarket's 'huang' auction on a book saved by bench/clearing.py; prints one JSON line.

Runs in pymarket's own interpreter (it needs pandas<3, which the project does not pin), so
it imports nothing from the project:

    /tmp/pymarket-venv/bin/python bench/pymarket_huang.py BOOK.npz

pymarket takes prices and quantities as floats: that is its interface, not ours.
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def main(path: str) -> None:
    import numpy as np
    import pymarket

    warnings.simplefilter("ignore")  # pymarket's pandas FutureWarnings, one per call
    book = np.load(path)
    market = pymarket.Market()
    # Timer: pymarket's whole run ('huang'): building its bid frame from the accepted bids,
    # merging equal prices, the demand and supply curves, the auction, its transactions.
    for quantity, price, user, is_buy in zip(
        book["quantity_wh"].tolist(),
        (book["price_scaled"] / 100_000).tolist(),
        book["order_id"].tolist(),
        book["is_buy"].tolist(),
        strict=True,
    ):
        market.accept_bid(quantity, price, user, is_buy)
    started = time.perf_counter()
    transactions, extra = market.run("huang")
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "trades": len(transactions.get_df()),
                "quantity_traded": float(extra.get("quantity_traded", 0)),
                "price_buy": None if extra.get("price_buy") is None else float(extra["price_buy"]),
                "price_sell": None if extra.get("price_sell") is None else float(extra["price_sell"]),
                "pymarket": getattr(pymarket, "__version__", "?"),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
