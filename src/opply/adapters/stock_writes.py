"""Write the stock of many products in one UPDATE instead of one per product.

The ORM flushes each changed product with its own ``UPDATE`` (psycopg2's ``executemany`` is a
loop of round trips), so an order of 50 lines cost 50 round trips while its rows were locked.
The products were read ``FOR UPDATE`` in the same transaction, so their new counts are exact;
one ``UPDATE ... SET quantity_in_stock = CASE id WHEN ... END WHERE id IN (...)`` writes them all.
The database's CHECK constraint still refuses a negative count, whatever the code does.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Integer, Update, bindparam, case, inspect, update
from sqlalchemy.orm import Session, attributes
from sqlalchemy.orm.exc import StaleDataError

from opply.adapters.orm import products
from opply.domain.model import Product

STOCK = "quantity_in_stock"


@functools.lru_cache(maxsize=128)
def _stock_update(count: int) -> Update:
    """The UPDATE for ``count`` products, built once per size with bound parameters: building
    it afresh for every order cost more CPU than sending it."""
    new_stock = case(
        *(
            (products.c.id == bindparam(f"id_{k}"), bindparam(f"stock_{k}", type_=Integer))
            for k in range(count)
        ),
        else_=products.c.quantity_in_stock,
    )
    return (
        update(products)
        .where(products.c.id.in_(bindparam("ids", expanding=True)))
        .values({STOCK: new_stock})
        .execution_options(synchronize_session=False)
    )


def flush_stock_together(session: Session) -> None:
    """Write, in one statement, every product whose only pending change is its stock count.

    Call before a flush. Products are left clean (the ORM writes nothing more for them); any
    other pending change (a name, a price) is left to the ORM's normal flush.
    """
    changed: dict[int, Product] = {}
    for obj in session.dirty:
        if not isinstance(obj, Product) or obj.id is None:
            continue
        # The attributes set since the load, from the ORM's own record of their old values:
        # a dict lookup, where asking every attribute for its history cost more CPU than the
        # rest of a 50-line order. Set to an equal value counts as set: written the same.
        if inspect(obj).committed_state.keys() == {STOCK}:
            changed[obj.id] = obj
    if len(changed) < 2:
        return  # the ORM's own UPDATE is already a single statement
    ids = sorted(changed)
    params: dict[str, Any] = {"ids": ids}
    for k, product_id in enumerate(ids):
        params[f"id_{k}"] = product_id
        params[f"stock_{k}"] = changed[product_id].quantity_in_stock
    result = session.execute(_stock_update(len(ids)), params)
    if result.rowcount != len(ids):  # type: ignore[attr-defined]
        raise StaleDataError(f"stock update matched {result.rowcount} of {len(ids)} products")  # type: ignore[attr-defined]
    for obj in changed.values():
        attributes.set_committed_value(obj, STOCK, obj.quantity_in_stock)
