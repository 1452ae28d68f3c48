"""The synnet REST service: FastAPI app serving every model in the model store."""
