"""microshop: a small shop of four HTTP services (user, product, order, payment) that share one skeleton."""
